package deploy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	sigsjson "sigs.k8s.io/json"
	sigsyaml "sigs.k8s.io/yaml"
)

// The manifests and what each may hold: remix.yaml applies to an empty
// namespace with namespace rights only; cluster.yaml holds what is
// cluster-scoped; autoscaling.yaml needs KEDA.
const (
	coreManifests      = "kubernetes/remix.yaml"
	clusterManifests   = "kubernetes/cluster.yaml"
	autoscalingObjects = "kubernetes/autoscaling.yaml"
)

// madeByYou are the objects remix.yaml refers to and does not define: the
// configuration folders and the secrets, made with the kubectl commands in
// its header.
var madeByYou = map[string]string{
	"ConfigMap/remix-systems": "kubectl -n remix create configmap remix-systems",
	"ConfigMap/remix-models":  "kubectl -n remix create configmap remix-models",
	"Secret/remix-secrets":    "kubectl -n remix create secret generic remix-secrets",
}

// object is one decoded document of a manifest file.
type object struct {
	file string
	kind string
	name string
	obj  any
}

// newObject returns the Go type a document of this apiVersion and kind
// decodes into, and whether the kind is namespaced.
func newObject(apiVersion, kind string) (obj any, namespaced bool, err error) {
	switch apiVersion + "/" + kind {
	case "v1/Namespace":
		return &corev1.Namespace{}, false, nil
	case "v1/Service":
		return &corev1.Service{}, true, nil
	case "v1/ConfigMap":
		return &corev1.ConfigMap{}, true, nil
	case "apps/v1/Deployment":
		return &appsv1.Deployment{}, true, nil
	case "apps/v1/StatefulSet":
		return &appsv1.StatefulSet{}, true, nil
	case "policy/v1/PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}, true, nil
	case "autoscaling/v2/HorizontalPodAutoscaler":
		return &autoscalingv2.HorizontalPodAutoscaler{}, true, nil
	case "keda.sh/v1alpha1/ScaledObject":
		return &scaledObject{}, true, nil
	}
	return nil, false, fmt.Errorf("%s %s: no Go type for it in this test (add one before using the kind)", apiVersion, kind)
}

// decodeManifests decodes every document of a file strictly into its
// Kubernetes API type.
func decodeManifests(t *testing.T, file string) []object {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("a manifest is an input of this test: %v", err)
	}
	r := k8syaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	var objs []object
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		obj, namespaced, err := decodeDoc(doc)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if obj == nil {
			continue // only comments
		}
		meta := obj.(metav1.Object)
		kind := kindOf(obj)
		if meta.GetName() == "" {
			t.Errorf("%s: a %s without a name", file, kind)
		}
		if meta.GetNamespace() != "" {
			t.Errorf("%s: %s/%s names namespace %s: apply to a namespace instead", file, kind, meta.GetName(), meta.GetNamespace())
		}
		if file == clusterManifests && namespaced {
			t.Errorf("%s: %s/%s is namespaced: it belongs in %s", file, kind, meta.GetName(), coreManifests)
		}
		if file != clusterManifests && !namespaced {
			t.Errorf("%s: %s/%s is cluster-scoped: it belongs in %s", file, kind, meta.GetName(), clusterManifests)
		}
		objs = append(objs, object{file: file, kind: kindOf(obj), name: meta.GetName(), obj: obj})
	}
	return objs
}

// decodeDoc decodes one document strictly (an unknown or repeated field is
// an error) into its API type; a document of comments only is nil.
func decodeDoc(doc []byte) (obj any, namespaced bool, err error) {
	var tm metav1.TypeMeta
	if err := sigsyaml.Unmarshal(doc, &tm); err != nil {
		return nil, false, err
	}
	if tm.APIVersion == "" && tm.Kind == "" {
		if len(bytes.TrimSpace(stripComments(doc))) > 0 {
			return nil, false, fmt.Errorf("a document without apiVersion and kind:\n%s", doc)
		}
		return nil, false, nil
	}
	obj, namespaced, err = newObject(tm.APIVersion, tm.Kind)
	if err != nil {
		return nil, false, err
	}
	// As the API server's strict field validation does: YAML to JSON
	// (a repeated key is an error), then a case-sensitive decode that
	// reports unknown and repeated fields (encoding/json would take
	// imagePullpolicy for imagePullPolicy).
	j, err := sigsyaml.YAMLToJSONStrict(doc)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", tm.Kind, err)
	}
	strict, err := sigsjson.UnmarshalStrict(j, obj)
	if err == nil && len(strict) > 0 {
		err = errors.Join(strict...)
	}
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", tm.Kind, err)
	}
	return obj, namespaced, nil
}

func kindOf(obj any) string {
	if o, ok := obj.(interface{ GetObjectKind() schema.ObjectKind }); ok {
		return o.GetObjectKind().GroupVersionKind().Kind
	}
	return fmt.Sprintf("%T", obj)
}

func stripComments(doc []byte) []byte {
	var out bytes.Buffer
	for line := range bytes.Lines(doc) {
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' && string(t) != "---" {
			out.Write(line)
		}
	}
	return out.Bytes()
}

// workload is a Deployment's or StatefulSet's pod template, for checks
// that apply to both.
type workload struct {
	kind, name string
	selector   *metav1.LabelSelector
	pod        corev1.PodTemplateSpec
}

func workloads(objs []object) []workload {
	var ws []workload
	for _, o := range objs {
		switch v := o.obj.(type) {
		case *appsv1.Deployment:
			ws = append(ws, workload{"Deployment", v.Name, v.Spec.Selector, v.Spec.Template})
		case *appsv1.StatefulSet:
			ws = append(ws, workload{"StatefulSet", v.Name, v.Spec.Selector, v.Spec.Template})
		}
	}
	return ws
}

func find[T any](t *testing.T, objs []object, name string) T {
	t.Helper()
	for _, o := range objs {
		if v, ok := o.obj.(T); ok && o.name == name {
			return v
		}
	}
	var zero T
	t.Fatalf("no %T named %s", zero, name)
	return zero
}

func TestKubernetesManifestsDecodeStrictly(t *testing.T) {
	t.Parallel()
	for _, f := range []string{coreManifests, clusterManifests, autoscalingObjects} {
		if objs := decodeManifests(t, f); len(objs) == 0 {
			t.Errorf("%s: no objects", f)
		}
	}
}

// TestKubernetesCoreApplies checks that remix.yaml is whole: everything it
// refers to is in it or made by the documented commands, selectors select,
// probes and ports agree, and pull policies suit the tags.
func TestKubernetesCoreApplies(t *testing.T) {
	t.Parallel()
	objs := decodeManifests(t, coreManifests)
	header, err := os.ReadFile(coreManifests)
	if err != nil {
		t.Fatal(err)
	}
	defined := map[string]bool{}
	for _, o := range objs {
		defined[o.kind+"/"+o.name] = true
	}
	for ref, cmd := range madeByYou {
		if !strings.Contains(string(header), cmd) {
			t.Errorf("%s is used but the header does not say to make it (%q)", ref, cmd)
		}
	}
	refer := func(w workload, ref string) {
		if !defined[ref] && madeByYou[ref] == "" {
			t.Errorf("%s/%s refers to %s, which is neither defined nor made by a documented command", w.kind, w.name, ref)
		}
	}
	services := map[string]*corev1.Service{}
	for _, o := range objs {
		if s, ok := o.obj.(*corev1.Service); ok {
			services[s.Name] = s
		}
	}
	remixCmds := remixImageCommands(t)
	ws := workloads(objs)
	for _, w := range ws {
		sel, err := metav1.LabelSelectorAsSelector(w.selector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(w.pod.Labels)) {
			t.Errorf("%s/%s: its selector does not select its own pods (%v)", w.kind, w.name, err)
		}
		pod := w.pod.Spec
		for _, v := range pod.Volumes {
			if v.ConfigMap != nil {
				refer(w, "ConfigMap/"+v.ConfigMap.Name)
			}
			if v.Secret != nil {
				refer(w, "Secret/"+v.Secret.SecretName)
			}
		}
		for _, c := range pod.Containers {
			where := fmt.Sprintf("%s/%s container %s", w.kind, w.name, c.Name)
			checkPullPolicy(t, where, c)
			for _, e := range c.EnvFrom {
				if e.SecretRef != nil {
					refer(w, "Secret/"+e.SecretRef.Name)
				}
				if e.ConfigMapRef != nil {
					refer(w, "ConfigMap/"+e.ConfigMapRef.Name)
				}
			}
			for _, e := range c.Env {
				if e.Name == "REDIS_URL" {
					checkRedisURL(t, where, e.Value, services)
				}
			}
			if strings.HasPrefix(c.Image, "remix:") || strings.Contains(c.Image, "/remix:") {
				checkRemixContainer(t, where, c, pod, remixCmds)
			}
		}
	}
	// Every Service and PodDisruptionBudget selects some workload's pods.
	selectsSome := func(what string, sel labels.Selector) {
		for _, w := range ws {
			if sel.Matches(labels.Set(w.pod.Labels)) {
				return
			}
		}
		t.Errorf("%s selects no pods of this file", what)
	}
	for _, o := range objs {
		switch v := o.obj.(type) {
		case *corev1.Service:
			selectsSome("Service/"+v.Name, labels.SelectorFromSet(v.Spec.Selector))
		case *policyv1.PodDisruptionBudget:
			sel, err := metav1.LabelSelectorAsSelector(v.Spec.Selector)
			if err != nil {
				t.Fatal(err)
			}
			selectsSome("PodDisruptionBudget/"+v.Name, sel)
		case *appsv1.StatefulSet:
			if services[v.Spec.ServiceName] == nil {
				t.Errorf("StatefulSet/%s: its service %q is not defined", v.Name, v.Spec.ServiceName)
			}
		}
	}

	ingest := find[*appsv1.Deployment](t, objs, "remix-ingest")
	if ingest.Spec.Replicas == nil || *ingest.Spec.Replicas != 2 {
		t.Error("remix-ingest: want 2 replicas, one reading and one standing by")
	}
	pusher := find[*appsv1.Deployment](t, objs, "remix-pusher")
	if pusher.Spec.Replicas != nil {
		t.Error("remix-pusher sets replicas: the autoscaler owns them, and a re-apply would reset its choice")
	}
	for _, name := range []string{"remix-ingest", "remix-pusher"} {
		find[*policyv1.PodDisruptionBudget](t, objs, name)
	}
	redis := find[*appsv1.StatefulSet](t, objs, "remix-redis")
	args := strings.Join(redis.Spec.Template.Spec.Containers[0].Args, " ")
	if !strings.Contains(args, "--appendonly yes") {
		t.Errorf("remix-redis runs without an append-only file: %s", args)
	}
	if len(redis.Spec.VolumeClaimTemplates) != 1 || !slices.ContainsFunc(redis.Spec.Template.Spec.Containers[0].VolumeMounts,
		func(m corev1.VolumeMount) bool {
			return m.MountPath == "/data" && m.Name == redis.Spec.VolumeClaimTemplates[0].Name
		}) {
		t.Error("remix-redis: /data is not on a PersistentVolumeClaim")
	}
}

// checkPullPolicy: a locally built or version tag is used where it is
// (IfNotPresent: remix:local is never pulled); a moving tag is pulled.
func checkPullPolicy(t *testing.T, where string, c corev1.Container) {
	t.Helper()
	ref := c.Image[strings.LastIndex(c.Image, "/")+1:]
	_, tag, tagged := strings.Cut(ref, ":")
	moving := !tagged || tag == "latest"
	switch {
	case c.ImagePullPolicy == "":
		t.Errorf("%s: no imagePullPolicy (the default depends on the tag: say which)", where)
	case moving && c.ImagePullPolicy != corev1.PullAlways:
		t.Errorf("%s: image %s moves; pull it Always", where, c.Image)
	case !moving && c.ImagePullPolicy != corev1.PullIfNotPresent:
		t.Errorf("%s: image %s is a fixed or local tag; use IfNotPresent (a local tag cannot be pulled)", where, c.Image)
	}
}

func checkRedisURL(t *testing.T, where, value string, services map[string]*corev1.Service) {
	t.Helper()
	u, err := url.Parse(value)
	if err != nil || u.Scheme != "redis" {
		t.Errorf("%s: REDIS_URL %q is not a redis:// URL", where, value)
		return
	}
	s := services[u.Hostname()]
	if s == nil {
		t.Errorf("%s: REDIS_URL names %s, which is not a Service of this file", where, u.Hostname())
		return
	}
	if !slices.ContainsFunc(s.Spec.Ports, func(p corev1.ServicePort) bool { return fmt.Sprint(p.Port) == u.Port() }) {
		t.Errorf("%s: REDIS_URL port %s is not a port of Service/%s", where, u.Port(), s.Name)
	}
}

// checkRemixContainer: it runs a binary of cmd/, serves HTTP where its
// probes ask (liveness /healthz, readiness /readyz), and has a writable
// /tmp when its root file system is read-only (large transactions spill).
func checkRemixContainer(t *testing.T, where string, c corev1.Container, pod corev1.PodSpec, remixCmds []string) {
	t.Helper()
	if len(c.Command) == 0 || !slices.Contains(remixCmds, c.Command[0]) {
		t.Errorf("%s: command %q is not a binary of the image (%v)", where, c.Command, remixCmds)
	}
	port := httpPort(c.Args)
	if port == "" {
		t.Errorf("%s: no --http-addr :PORT in %q", where, c.Args)
		return
	}
	ports := map[string]string{}
	for _, p := range c.Ports {
		ports[p.Name] = fmt.Sprint(p.ContainerPort)
	}
	probe := func(kind string, p *corev1.Probe, path string) {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != path {
			t.Errorf("%s: the %s probe does not GET %s", where, kind, path)
			return
		}
		got := p.HTTPGet.Port.String()
		if named, ok := ports[got]; ok {
			got = named
		}
		if got != port {
			t.Errorf("%s: the %s probe asks port %s; the process serves %s", where, kind, got, port)
		}
	}
	probe("liveness", c.LivenessProbe, "/healthz")
	probe("readiness", c.ReadinessProbe, "/readyz")
	if c.SecurityContext != nil && c.SecurityContext.ReadOnlyRootFilesystem != nil && *c.SecurityContext.ReadOnlyRootFilesystem {
		tmp := slices.IndexFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == "/tmp" })
		if tmp < 0 || !slices.ContainsFunc(pod.Volumes, func(v corev1.Volume) bool {
			return v.Name == c.VolumeMounts[tmp].Name && v.EmptyDir != nil
		}) {
			t.Errorf("%s: a read-only root file system without an emptyDir at /tmp", where)
		}
	}
}

// TestStrictDecodeRefuses: a misspelled or repeated field fails the
// decode, in core objects and in the ScaledObject alike.
func TestStrictDecodeRefuses(t *testing.T) {
	t.Parallel()
	for name, doc := range map[string]string{
		"unknown container field": `apiVersion: apps/v1
kind: Deployment
metadata: {name: x}
spec:
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec:
      containers: [{name: x, image: "remix:local", imagePullpolicy: IfNotPresent}]
`,
		"repeated field": `apiVersion: v1
kind: Service
metadata: {name: x}
spec:
  ports: [{port: 1}]
  ports: [{port: 2}]
`,
		"unknown ScaledObject field": `apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: x}
spec:
  scaleTargetRef: {name: x}
  triggers: [{type: redis-streams, metdata: {stream: s}}]
`,
		"unknown kind": `apiVersion: v1
kind: Pod
metadata: {name: x}
`,
	} {
		if _, _, err := decodeDoc([]byte(doc)); err == nil {
			t.Errorf("%s: decoded without an error", name)
		}
	}
}

// TestKubernetesFilesDocumented: each file's header says how it is applied.
func TestKubernetesFilesDocumented(t *testing.T) {
	t.Parallel()
	for _, f := range []string{coreManifests, clusterManifests, autoscalingObjects} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(b), "#") || !strings.Contains(string(b), "apply -f deploy/"+filepath.ToSlash(f)) {
			t.Errorf("%s: its header comment does not say how to apply it", f)
		}
	}
}
