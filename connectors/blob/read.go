package blob

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
)

// DecodeFile reads a dataset file whole, for tests and small tools (query
// engines read the files themselves): each row as a map from column name
// to value. Values are nil, bool, int64, float64, string, json.Number (a
// decimal, exactly, and the version), time.Time (timestamps and dates) or
// []string (_remix_absent). A JSON Lines row leaves an absent column out
// and gives numbers as json.Number, decimals and timestamps as strings.
func DecodeFile(data []byte, name string) ([]map[string]any, error) {
	if strings.HasSuffix(name, ".jsonl.gz") {
		return decodeJSONL(data)
	}
	return decodeParquet(data)
}

func decodeJSONL(data []byte) ([]map[string]any, error) {
	gz, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	var out []map[string]any
	sc := bufio.NewScanner(gz)
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.UseNumber()
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			return nil, fmt.Errorf("line %d: %w", len(out)+1, err)
		}
		if a, ok := m[ColAbsent].([]any); ok {
			names := make([]string, 0, len(a))
			for _, x := range a {
				s, _ := x.(string)
				names = append(names, s)
			}
			m[ColAbsent] = names
		}
		out = append(out, m)
	}
	return out, sc.Err()
}

func decodeParquet(data []byte) ([]map[string]any, error) {
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, err
	}
	leaves := f.Schema().Columns()
	nodes := make([]parquet.Node, len(leaves))
	names := make([]string, len(leaves))
	for i, path := range leaves {
		names[i] = path[0]
		n := parquet.Node(f.Schema())
		for _, seg := range path {
			for _, fld := range n.Fields() {
				if fld.Name() == seg {
					n = fld
					break
				}
			}
		}
		nodes[i] = n
	}
	var out []map[string]any
	for _, rg := range f.RowGroups() {
		rows := rg.Rows()
		buf := make([]parquet.Row, 256)
		for {
			n, err := rows.ReadRows(buf)
			for _, r := range buf[:n] {
				m := map[string]any{}
				for _, v := range r {
					col := v.Column()
					name := names[col]
					if name == ColAbsent {
						list, _ := m[name].([]string)
						if !v.IsNull() {
							list = append(list, string(v.ByteArray()))
						}
						m[name] = list
						continue
					}
					m[name] = valueOf(v, nodes[col])
				}
				out = append(out, m)
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				rows.Close()
				return nil, err
			}
		}
		rows.Close()
	}
	return out, nil
}

func valueOf(v parquet.Value, n parquet.Node) any {
	if v.IsNull() {
		return nil
	}
	var lv format.LogicalTypeValue
	if lt := n.Type().LogicalType(); lt != nil {
		lv = lt.Value
	}
	switch t := lv.(type) {
	case *format.DecimalType:
		var d *big.Int
		if v.Kind() == parquet.Int64 {
			d = big.NewInt(v.Int64())
		} else if v.Kind() == parquet.Int32 {
			d = big.NewInt(int64(v.Int32()))
		} else {
			b := v.ByteArray()
			d = new(big.Int).SetBytes(b)
			if len(b) > 0 && b[0]&0x80 != 0 {
				d.Sub(d, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
			}
		}
		return json.Number(formatDecimal(d, int(t.Scale)))
	case *format.TimestampType:
		return time.UnixMicro(v.Int64()).UTC()
	case *format.DateType:
		return time.Unix(int64(v.Int32())*86400, 0).UTC()
	}
	switch v.Kind() {
	case parquet.Boolean:
		return v.Boolean()
	case parquet.Int32:
		return int64(v.Int32())
	case parquet.Int64:
		return v.Int64()
	case parquet.Double:
		return v.Double()
	case parquet.Float:
		return float64(v.Float())
	}
	return string(v.ByteArray())
}
