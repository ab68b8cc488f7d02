// Command upstream is the example's backend: it answers every request with
// the method, path and headers it received as JSON, so you can see what
// tokenwise added (x-user-id, x-user-scopes) and removed.
package main

import (
	"encoding/json"
	"flag"
	"log"
	"net/http"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	flag.Parse()
	srv := &http.Server{Addr: *addr, Handler: http.HandlerFunc(echo), ReadHeaderTimeout: 5 * time.Second}
	log.Printf("upstream echo on http://%s", *addr)
	log.Fatal(srv.ListenAndServe())
}

// echo writes the request back as JSON.
func echo(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"method": r.Method, "path": r.URL.RequestURI(), "headers": r.Header})
}
