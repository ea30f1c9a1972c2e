package redact_test

import (
	"fmt"

	"github.com/batchenrich/batchenrich/redact"
)

func Example() {
	fmt.Println(redact.String("postgres://app:s3cret@db:5432/app?sslmode=disable"))
	fmt.Println(redact.String("host=db user=app password='s3 cret' dbname=app"))
	fmt.Println(redact.String("https://api.example.com/v1/profile?id=7&api_key=abc123"))
	fmt.Println(redact.Text(`Get "https://token:abc@api.example.com/v1": EOF`))
	// Output:
	// postgres://app:xxxxx@db:5432/app?sslmode=disable
	// host=db user=app password=xxxxx dbname=app
	// https://api.example.com/v1/profile?id=7&api_key=xxxxx
	// Get "https://xxxxx@api.example.com/v1": EOF
}
