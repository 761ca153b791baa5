// {{name}}: an alyx function. It reads the request envelope
// ({"request_id", "function", "input", "context"}), uses a config value,
// logs, and answers JSON: POST {"name": "Ada"} -> {"greeting": "Hello, Ada!"}.
function handle() {
  const envelope = JSON.parse(Host.inputString());
  const input = envelope.input || {};
  const name = typeof input.name === "string" ? input.name : "world";
  if (name === "") {
    // A failure with a 4xx status of its own: alyx answers 422.
    const error = { code: "BAD_NAME", message: "name is empty", status: 422 };
    Host.outputString(JSON.stringify({ success: false, error }));
    return;
  }
  const word = Config.get("greeting") || "Hello";
  console.log(`greeting ${name}`);
  Host.outputString(JSON.stringify({ greeting: `${word}, ${name}!` }));
}

module.exports = { handle };
