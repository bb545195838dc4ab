// Package examples holds ready-to-run Remix configurations; its tests load
// each one and run it.
package examples
