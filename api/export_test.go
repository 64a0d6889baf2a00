package api

// RouteAccess is a line of the route table, for the tests of package
// api_test (the authorization matrix).
type RouteAccess struct {
	Pattern     string
	Public, Ops bool
	Scopes      []Scope
	Every       bool
}

// RouteTable returns the route table.
func RouteTable() []RouteAccess {
	var list []RouteAccess
	for _, r := range routes {
		list = append(list, RouteAccess{Pattern: r.pattern, Public: r.access.kind == accessPublic, Ops: r.access.kind == accessOps,
			Scopes: r.access.scopes, Every: r.access.every})
	}
	return list
}
