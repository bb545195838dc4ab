package deploy

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
	"gopkg.in/yaml.v3"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sqlpipe/remix/coord"
	"github.com/sqlpipe/remix/internal/testenv"
)

// scaledObject mirrors the fields of KEDA's ScaledObject (keda.sh/v1alpha1,
// github.com/kedacore/keda/v2/apis/keda/v1alpha1) that a manifest may set,
// with the same JSON names, so a strict decode refuses a misspelled or
// unknown field as the CRD's schema would. KEDA's own module is not used:
// it brings controller-runtime, client-go and every scaler's SDK into the
// test build for a handful of structs.
type scaledObject struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              scaledObjectSpec `json:"spec"`
}

type scaledObjectSpec struct {
	ScaleTargetRef        *scaleTarget     `json:"scaleTargetRef"`
	PollingInterval       *int32           `json:"pollingInterval,omitempty"`
	InitialCooldownPeriod *int32           `json:"initialCooldownPeriod,omitempty"`
	CooldownPeriod        *int32           `json:"cooldownPeriod,omitempty"`
	IdleReplicaCount      *int32           `json:"idleReplicaCount,omitempty"`
	MinReplicaCount       *int32           `json:"minReplicaCount,omitempty"`
	MaxReplicaCount       *int32           `json:"maxReplicaCount,omitempty"`
	Advanced              *advancedConfig  `json:"advanced,omitempty"`
	Triggers              []scaleTrigger   `json:"triggers"`
	Fallback              *fallbackReplica `json:"fallback,omitempty"`
}

type scaleTarget struct {
	Name                   string `json:"name"`
	APIVersion             string `json:"apiVersion,omitempty"`
	Kind                   string `json:"kind,omitempty"`
	EnvSourceContainerName string `json:"envSourceContainerName,omitempty"`
}

type advancedConfig struct {
	HorizontalPodAutoscalerConfig *struct {
		Behavior *autoscalingv2.HorizontalPodAutoscalerBehavior `json:"behavior,omitempty"`
		Name     string                                         `json:"name,omitempty"`
	} `json:"horizontalPodAutoscalerConfig,omitempty"`
	RestoreToOriginalReplicaCount bool `json:"restoreToOriginalReplicaCount,omitempty"`
	ScalingModifiers              struct {
		Formula          string                         `json:"formula,omitempty"`
		Target           string                         `json:"target,omitempty"`
		ActivationTarget string                         `json:"activationTarget,omitempty"`
		MetricType       autoscalingv2.MetricTargetType `json:"metricType,omitempty"`
	} `json:"scalingModifiers,omitempty"`
}

type scaleTrigger struct {
	Type              string            `json:"type"`
	Name              string            `json:"name,omitempty"`
	UseCachedMetrics  bool              `json:"useCachedMetrics,omitempty"`
	Metadata          map[string]string `json:"metadata"`
	AuthenticationRef *struct {
		Name string `json:"name"`
		Kind string `json:"kind,omitempty"`
	} `json:"authenticationRef,omitempty"`
	MetricType autoscalingv2.MetricTargetType `json:"metricType,omitempty"`
}

type fallbackReplica struct {
	FailureThreshold int32  `json:"failureThreshold"`
	Replicas         int32  `json:"replicas"`
	Behavior         string `json:"behavior,omitempty"`
}

// redisStreamsMetadata are the keys KEDA's redis-streams scaler reads.
var redisStreamsMetadata = []string{
	"address", "addressFromEnv", "host", "hostFromEnv", "port", "portFromEnv",
	"username", "usernameFromEnv", "password", "passwordFromEnv",
	"stream", "consumerGroup", "pendingEntriesCount", "streamLength", "lagCount", "activationLagCount",
	"enableTLS", "unsafeSsl", "databaseIndex",
}

// exampleTarget reads examples/postgresql_to_postgresql: the target system
// (the one with a push mixer) and the models it is pushed.
func exampleTarget(t *testing.T) (target string, models []string) {
	t.Helper()
	dir := "../examples/postgresql_to_postgresql"
	files, err := filepath.Glob(filepath.Join(dir, "systems", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("example systems: %v", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var systems map[string]struct {
			PushMixer map[string]any `yaml:"push_mixer"`
		}
		if err := yaml.Unmarshal(b, &systems); err != nil {
			t.Fatal(err)
		}
		for name, s := range systems {
			if len(s.PushMixer) == 0 {
				continue
			}
			if target != "" {
				t.Fatalf("the example has targets %s and %s: autoscaling.yaml scales on one", target, name)
			}
			target = name
			for m := range s.PushMixer {
				models = append(models, m)
			}
		}
	}
	if target == "" {
		t.Fatal("the example has no target")
	}
	slices.Sort(models)
	return target, models
}

// TestAutoscalingReadsEveryPartition: the ScaledObject decodes strictly,
// scales the pusher Deployment, reads the lag (never the pending list, which
// Remix's cursor groups keep empty) of the target's group on every
// partition stream of every model it is pushed, with the stream names Remix
// makes, at the Redis Service of remix.yaml in the namespace of
// cluster.yaml, and adds them all up.
func TestAutoscalingReadsEveryPartition(t *testing.T) {
	t.Parallel()
	core := decodeManifests(t, coreManifests)
	cluster := decodeManifests(t, clusterManifests)
	objs := decodeManifests(t, autoscalingObjects)
	if len(objs) != 1 || objs[0].kind != "ScaledObject" {
		t.Fatalf("%s: want one ScaledObject, got %d objects", autoscalingObjects, len(objs))
	}
	so := objs[0].obj.(*scaledObject)
	ns := find[*corev1.Namespace](t, cluster, "remix")

	target := so.Spec.ScaleTargetRef
	if target == nil || (target.Kind != "" && target.Kind != "Deployment") {
		t.Fatalf("scaleTargetRef %+v: want the pusher Deployment", target)
	}
	pusher := find[*appsv1.Deployment](t, core, target.Name)
	if !slices.ContainsFunc(pusher.Spec.Template.Spec.Containers, func(c corev1.Container) bool {
		return len(c.Command) > 0 && filepath.Base(c.Command[0]) == "pusher"
	}) {
		t.Fatalf("the ScaledObject scales %s, which runs no pusher", target.Name)
	}
	redisSvc := find[*corev1.Service](t, core, "remix-redis")

	groupName, models := exampleTarget(t)
	c, err := coord.New(nil, coord.Config{}) // the defaults: namespace remix, 16 partitions
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, m := range models {
		for p := range c.Config().Partitions {
			want[c.StreamKey(m, p)] = true
		}
	}
	names := map[string]bool{}
	for i, tr := range so.Spec.Triggers {
		where := fmt.Sprintf("trigger %d (%s)", i, tr.Name)
		if tr.Type != "redis-streams" {
			t.Errorf("%s: type %s", where, tr.Type)
			continue
		}
		for k := range tr.Metadata {
			if !slices.Contains(redisStreamsMetadata, k) {
				t.Errorf("%s: the redis-streams scaler has no %q", where, k)
			}
		}
		md := tr.Metadata
		if md["lagCount"] == "" || md["pendingEntriesCount"] != "" || md["streamLength"] != "" {
			t.Errorf("%s: scale on lagCount only (Remix's groups are cursors: their pending list is always empty)", where)
		}
		if md["activationLagCount"] == "" {
			t.Errorf("%s: lagCount needs activationLagCount", where)
		}
		host, port, err := net.SplitHostPort(md["address"])
		if err != nil || host != redisSvc.Name+"."+ns.Name+".svc.cluster.local" || port != "6379" {
			t.Errorf("%s: address %q is not %s:6379 in namespace %s (KEDA resolves it from its own namespace)", where, md["address"], redisSvc.Name, ns.Name)
		}
		if md["consumerGroup"] != groupName {
			t.Errorf("%s: consumer group %q; the target's group is %q", where, md["consumerGroup"], groupName)
		}
		if !want[md["stream"]] {
			t.Errorf("%s: stream %q is not a partition stream of the target's models", where, md["stream"])
		}
		delete(want, md["stream"])
		if tr.Name == "" || names[tr.Name] {
			t.Errorf("%s: trigger names must be present and unique (the formula uses them)", where)
		}
		names[tr.Name] = true
	}
	for s := range want {
		t.Errorf("no trigger reads %s", s)
	}

	adv := so.Spec.Advanced
	if adv == nil || adv.ScalingModifiers.Formula == "" {
		t.Fatal("no scalingModifiers formula: each partition would scale on its own lag")
	}
	var terms []string
	for _, term := range strings.Split(adv.ScalingModifiers.Formula, "+") {
		terms = append(terms, strings.TrimSpace(term))
	}
	slices.Sort(terms)
	triggerNames := slices.Sorted(func(yield func(string) bool) {
		for n := range names {
			if !yield(n) {
				return
			}
		}
	})
	if !slices.Equal(terms, triggerNames) {
		t.Errorf("the formula adds %v; the triggers are %v", terms, triggerNames)
	}
	if adv.ScalingModifiers.Target == "" || adv.ScalingModifiers.MetricType != autoscalingv2.AverageValueMetricType {
		t.Errorf("scalingModifiers: want a target per pusher (AverageValue), got %+v", adv.ScalingModifiers)
	}
	lo, hi := so.Spec.MinReplicaCount, so.Spec.MaxReplicaCount
	if lo == nil || hi == nil || *lo < 1 || *lo > *hi || int(*hi) > len(models)*c.Config().Partitions {
		t.Errorf("replicas between %v and %v: want 1 ≤ min ≤ max ≤ %d partitions", lo, hi, len(models)*c.Config().Partitions)
	}
	if f := so.Spec.Fallback; f != nil && (f.Replicas < *lo || f.FailureThreshold < 1) {
		t.Errorf("fallback %+v", *f)
	}
}

// TestAutoscalingSignal shows, on a real Redis, what KEDA reads: the
// consumer group Remix makes for a target on a partition stream, and its
// lag (XINFO GROUPS) counting the entries the target has not applied. That
// the lag falls back to 0 as pushers apply them is coord's fleet test.
func TestAutoscalingSignal(t *testing.T) {
	t.Parallel()
	rdb, ns := testenv.Redis(t)
	ctx := testenv.Context(t)
	c, err := coord.New(rdb, coord.Config{Namespace: ns, Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.EnsureGroups(ctx, "customer", []string{"warehouse"}); err != nil {
		t.Fatal(err)
	}
	stream := c.StreamKey("customer", 1)
	for range 3 {
		if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []string{"k", "1", "d", "{}"}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	groups, err := rdb.XInfoGroups(ctx, stream).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != 1 || groups[0].Name != "warehouse" || groups[0].Lag != 3 || groups[0].Pending != 0 {
		b, _ := json.Marshal(groups)
		t.Fatalf("XINFO GROUPS %s: want group warehouse with lag 3 and nothing pending", b)
	}
}
