// {{name}}: an alyx function. It reads the request envelope
// ({"request_id", "function", "input", "context"}), uses a config value,
// logs, and answers JSON: POST {"name": "Ada"} -> {"greeting": "Hello, Ada!"}.
package main

import "github.com/extism/go-pdk"

type envelope struct {
	Input struct {
		Name *string `json:"name"`
	} `json:"input"`
}

//go:wasmexport handle
func handle() int32 {
	var request envelope
	if err := pdk.InputJSON(&request); err != nil {
		pdk.SetError(err)
		return 1
	}
	name := "world"
	if request.Input.Name != nil {
		name = *request.Input.Name
	}
	if name == "" {
		// A failure with a 4xx status of its own: alyx answers 422.
		pdk.OutputString(`{"success": false, "error": {"code": "BAD_NAME", "message": "name is empty", "status": 422}}`)
		return 0
	}
	word, ok := pdk.GetConfig("greeting")
	if !ok {
		word = "Hello"
	}
	pdk.Log(pdk.LogInfo, "greeting "+name)
	if err := pdk.OutputJSON(map[string]string{"greeting": word + ", " + name + "!"}); err != nil {
		pdk.SetError(err)
		return 1
	}
	return 0
}

func main() {}
