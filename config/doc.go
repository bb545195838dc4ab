// Package config loads a Remix configuration: a folder of system YAML files
// (SYSTEMS_DIR) and a folder of JSON Schema models (MODELS_DIR).
//
// Files are parsed into yaml.v3 nodes so every problem can name its file,
// line, column and key path; values are interpolated from the environment
// (${NAME}, ${NAME:-default}, $$ for a literal dollar); unknown keys are
// rejected with the closest known key; secrets are held in Secret, which never
// prints its value. The result holds compiled mixer rules ready for the
// pipeline. Connector-specific keys are described by a Spec per connector
// type, supplied by the caller (the connectors registry), so this package
// knows no connector.
package config
