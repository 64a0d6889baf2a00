package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// API calls aptflow's HTTP API with a bearer token.
type API struct {
	base, token string
	http        *http.Client
}

// NewAPI returns a client of the API at base (http://127.0.0.1:PORT) that
// keeps up to conns connections open, for as many concurrent callers, and
// gives each request up to timeout.
func NewAPI(base, token string, conns int, timeout time.Duration) *API {
	return &API{base: base, token: token, http: &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			IdleConnTimeout:     time.Minute,
		},
	}}
}

// Do sends in as JSON (nil: no body) and returns the status, the
// Content-Type and the body of the answer; err is a transport error only
// (no answer at all).
func (c *API) Do(ctx context.Context, method, path string, in any) (status int, contentType string, body []byte, err error) {
	return c.DoWith(ctx, method, path, in, nil)
}

// DoWith is Do with header added to the request's (Accept, say).
func (c *API) DoWith(ctx context.Context, method, path string, in any, header http.Header) (status int, contentType string, body []byte, err error) {
	var rd io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, "", nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return 0, "", nil, err
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), body, err
}

// Call sends a request whose answer must have status want, and puts the
// answer into out: nothing for nil, the body as it is for a *[]byte, or
// the JSON decoded into anything else.
func (c *API) Call(ctx context.Context, want int, method, path string, in, out any) error {
	status, _, b, err := c.Do(ctx, method, path, in)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if status != want {
		return fmt.Errorf("%s %s: %d, want %d: %.300s", method, path, status, want, b)
	}
	switch out := out.(type) {
	case nil:
		return nil
	case *[]byte:
		*out = b
		return nil
	default:
		return json.Unmarshal(b, out)
	}
}
