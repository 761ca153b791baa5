// {{name}}: an alyx function. It reads the request envelope
// ({"request_id", "function", "input", "context"}), uses a config value,
// logs, and answers JSON: POST {"name": "Ada"} -> {"greeting": "Hello, Ada!"}.
import { Config, Host, LogLevel } from "@extism/as-pdk";
import { JSON } from "assemblyscript-json/assembly";

export function handle(): i32 {
  const envelope = <JSON.Obj>JSON.parse(Host.inputString());
  let name = "world";
  const input = envelope.getObj("input");
  if (input != null) {
    const given = input.getString("name");
    if (given != null) name = given.valueOf();
  }
  if (name == "") {
    // A failure with a 4xx status of its own: alyx answers 422.
    Host.outputString('{"success": false, "error": {"code": "BAD_NAME", "message": "name is empty", "status": 422}}');
    return 0;
  }
  const word = Config.get("greeting");
  Host.log(LogLevel.Info, "greeting " + name);
  const out = new JSON.Obj();
  out.set("greeting", (word == null ? "Hello" : word) + ", " + name + "!");
  Host.outputString(out.stringify());
  return 0;
}

// AssemblyScript calls this on a failed assertion, then traps.
export function abort(message: string | null, file: string | null, line: u32, column: u32): void {}
