// Package deploy holds no code that runs: its tests check the deployment
// files, docker-compose.yml at the root and the manifests in k8s/, against the
// services they start. The compose file is loaded as Docker Compose loads it
// (compose-spec/compose-go), the manifests decode strictly into the
// Kubernetes API types, and every service's environment goes through its own
// LoadConfig: a variable it does not know, a required one missing or a value
// it refuses fails `make test`, not a deployment. It is a module of its own so
// that these dependencies stay out of the service binaries.
package deploy
