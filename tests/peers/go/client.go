// The AWS SDK for Go v2 as an independent peer in imdsd's tests: the
// default credential chain, from whatever the environment says (IMDS
// endpoint, container endpoint, or a credential_process profile). Prints one
// JSON line: the access key id, the provider that found it, the expiry.
// Never prints a secret.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
)

type output struct {
	AccessKeyId string  `json:"AccessKeyId"`
	Source      string  `json:"Source"`
	Expires     *string `json:"Expires"`
}

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		fmt.Fprintf(os.Stderr, "load config: %v\n", err)
		os.Exit(1)
	}
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		fmt.Fprintf(os.Stderr, "retrieve credentials: %v\n", err)
		os.Exit(1)
	}
	out := output{AccessKeyId: creds.AccessKeyID, Source: creds.Source}
	if creds.CanExpire {
		s := creds.Expires.UTC().Format(time.RFC3339)
		out.Expires = &s
	}
	line, _ := json.Marshal(out)
	fmt.Println(string(line))
}
