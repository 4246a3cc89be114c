// Command go-hello answers every request with a greeting.
package main

import (
	"fmt"
	"log"
	"net/http"
)

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "Hello from a Go binary built by OpenShift through Shipwright")
	})
	log.Fatal(http.ListenAndServe(":8080", nil))
}
