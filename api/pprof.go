package api

import (
	"net/http"
	"net/http/pprof"
)

// Profiler returns net/http/pprof's handlers under /debug/pprof/, to
// profile a running process (`go tool pprof
// http://127.0.0.1:8080/debug/pprof/profile?seconds=10`). Set it as
// Deps.Profiler: it is then served behind the ops guard, like /metrics,
// because a profile shows the code and a CPU profile costs CPU.
func Profiler() http.Handler {
	// Its own mux: importing net/http/pprof also registers these on
	// http.DefaultServeMux, which aptflow never serves.
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index) // and the named profiles: heap, goroutine, allocs…
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
