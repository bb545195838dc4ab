// Package cloud opens the buckets of the cloud object stores, each through
// its own SDK: S3 (and S3-compatible stores), Google Cloud Storage and Azure
// Blob Storage. Importing it adds them to package stores' table; the
// binaries that write datasets (pusher, remix) import it, the ingest does
// not. A build can leave a store out with -tags remix_no_s3, remix_no_gcs or
// remix_no_azure.
package cloud
