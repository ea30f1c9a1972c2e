module github.com/batchenrich/batchenrich/bench

go 1.26.8

replace github.com/batchenrich/batchenrich => ../

require (
	github.com/destel/rill v0.7.0
	github.com/lib/pq v1.12.3
	github.com/mccutchen/go-httpbin/v2 v2.18.3
	golang.org/x/sync v0.24.0
)
