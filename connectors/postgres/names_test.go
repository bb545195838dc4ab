package postgres

import (
	"regexp"
	"strings"
	"testing"
)

// systemNameRE is what the configuration loader accepts as a system name.
var systemNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

func TestDefaultNameKeepsPlainNames(t *testing.T) {
	t.Parallel()
	// Names that are identifiers as they are keep the name earlier versions
	// gave them, so existing deployments keep their slot.
	for _, name := range []string{"shop", "shop_db", "db2", strings.Repeat("a", 57)} {
		if got, want := DefaultName(name), "remix_"+name; got != want || got != legacyName(name) {
			t.Errorf("DefaultName(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestDefaultNameIsInjectiveOnTrickyPairs(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 57)
	pairs := [][2]string{
		{"shop-db", "shop_db"},
		{"shop.db", "shop_db"},
		{"shop-db", "shop.db"},
		{"Shop", "shop"},
		{"SHOP-DB", "shop-db"},
		{long + "a", long + "b"},           // 58 bytes: cut by PostgreSQL at the same 63 bytes before
		{long + "aaaaaa", long + "aaaaab"}, // 63 bytes
		{long, long + "_"},
		{strings.Repeat("y", 63), strings.Repeat("y", 62)},
		{"a-b_c", "a_b-c"},
	}
	for _, p := range pairs {
		a, b := DefaultName(p[0]), DefaultName(p[1])
		if a == b {
			t.Errorf("%q and %q both get %q", p[0], p[1], a)
		}
		for _, n := range []string{a, b} {
			if !identRE.MatchString(n) {
				t.Errorf("%q is not a valid slot name", n)
			}
		}
	}
	// Before, these pairs met: the reason for the hash.
	if legacyName("shop-db") != legacyName("shop_db") || legacyName(long+"aaaaaa") != legacyName(long+"aaaaab") {
		t.Fatal("the legacy names were expected to collide")
	}
	if got := DefaultName("shop-db"); !strings.HasPrefix(got, "remix_shop_db_") || len(got) != len("remix_shop_db_")+nameHashLen {
		t.Fatalf("DefaultName(shop-db) = %q: the sanitised name and a hash", got)
	}
}

// FuzzDefaultName: two different system names never get the same slot
// name, every name is a valid slot name, and the result does not change
// from call to call.
func FuzzDefaultName(f *testing.F) {
	for _, s := range [][2]string{{"shop-db", "shop_db"}, {"a", "A"}, {strings.Repeat("z", 63), strings.Repeat("z", 62) + "Z"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if !systemNameRE.MatchString(a) || !systemNameRE.MatchString(b) {
			return
		}
		na, nb := DefaultName(a), DefaultName(b)
		if !identRE.MatchString(na) {
			t.Fatalf("DefaultName(%q) = %q is not a valid slot name", a, na)
		}
		if na != DefaultName(a) {
			t.Fatalf("DefaultName(%q) is not stable", a)
		}
		if a != b && na == nb {
			t.Fatalf("%q and %q both get %q", a, b, na)
		}
	})
}
