package tokenwise.library.downloads_test

import data.tokenwise.library.downloads

request(method, path, claims) := {
	"attributes": {"request": {"http": {"method": method, "path": path, "headers": {}}}},
	"parsed_path": split(trim_left(split(path, "?")[0], "/"), "/"),
	"token": {"issuer": "files", "claims": claims, "scopes": []},
}

link := {"jti": "l1", "download": "/downloads/report.pdf"}

test_link_allows_its_file_three_times_by_default if {
	d := downloads.allow with input as request("GET", "/downloads/report.pdf", link)
	d.allowed == true
	d.max_uses == 3
}

test_link_sets_its_own_count if {
	d := downloads.allow with input as request("GET", "/downloads/report.pdf", object.union(link, {"max_uses": 5}))
	d.max_uses == 5
}

test_link_count_is_capped if {
	d := downloads.allow with input as request("GET", "/downloads/report.pdf", object.union(link, {"max_uses": 1000}))
	d.max_uses == 10
}

test_bad_count_grants_nothing if {
	every bad in [0, -1, 0.5, 2.5, "5", true, null] {
		d := downloads.allow with input as request("GET", "/downloads/report.pdf", object.union(link, {"max_uses": bad}))
		d.allowed == false
		d.http_status == 403
	}
}

test_link_opens_no_other_file if {
	d := downloads.allow with input as request("GET", "/downloads/payroll.pdf", link)
	d.http_status == 403
}

test_link_is_not_a_prefix if {
	d := downloads.allow with input as request("GET", "/downloads/report.pdf/x", link)
	d.http_status == 403
}

test_dot_segments_refused if {
	d := downloads.allow with input as request("GET", "/downloads/x/../report.pdf", link)
	d.http_status == 400
}

test_only_reads if {
	d := downloads.allow with input as request("DELETE", "/downloads/report.pdf", link)
	d.http_status == 405
}

test_no_link_no_download if {
	d := downloads.allow with input as object.union(request("GET", "/downloads/report.pdf", {}), {"token": null})
	d.http_status == 401
}

test_other_paths_are_not_downloads if {
	d := downloads.allow with input as request("GET", "/orders", link)
	d.http_status == 404
}

test_settings if {
	d := downloads.allow with input as request("GET", "/files/a", {"download": "/files/a"})
		with data.tokenwise.downloads as {"prefix": "/files/", "default_uses": 1}
	d.max_uses == 1
}

test_dot_segment_spellings_refused if {
	every path in ["/downloads/x/..;/report.pdf", "/downloads/x/%2e%2E/report.pdf", "/downloads/x\\..\\report.pdf", "/downloads/x/..%5Creport.pdf"] {
		d := downloads.allow with input as request("GET", path, link)
		d.http_status == 400
	}
}
