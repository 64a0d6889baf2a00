package api

import (
	"net/http"
	"net/http/pprof"
	runtimepprof "runtime/pprof"
	"strings"
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
	mux.HandleFunc("/debug/pprof/", func(w http.ResponseWriter, r *http.Request) {
		// The index, and the named profiles: heap, goroutine, allocs…; an
		// unknown name is a problem+json 404 like any other.
		name := strings.TrimPrefix(r.URL.Path, "/debug/pprof/")
		if name != "" && runtimepprof.Lookup(name) == nil {
			writeProblem(w, problem(codeNotFound, "profil inconnu", nil))
			return
		}
		pprof.Index(w, r)
	})
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
