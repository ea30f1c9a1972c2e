module github.com/batchenrich/batchenrich/bench

go 1.26.8

replace github.com/batchenrich/batchenrich => ../

require (
	github.com/batchenrich/batchenrich v0.0.0-00010101000000-000000000000
	github.com/destel/rill v0.7.0
	github.com/jmoiron/sqlx v1.4.0
	github.com/lib/pq v1.12.3
	github.com/mccutchen/go-httpbin/v2 v2.18.3
	golang.org/x/sync v0.24.0
)

require (
	github.com/hashicorp/go-cleanhttp v0.5.2 // indirect
	github.com/hashicorp/go-retryablehttp v0.7.8 // indirect
	github.com/jackc/pgpassfile v1.0.0 // indirect
	github.com/jackc/pgservicefile v0.0.0-20240606120523-5a60cdf6a761 // indirect
	github.com/jackc/pgx/v5 v5.11.0 // indirect
	golang.org/x/text v0.29.0 // indirect
	golang.org/x/time v0.16.0 // indirect
)
