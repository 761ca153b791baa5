// The exports extism-js compiles: one per function the host may call.
declare module "main" {
  export function handle(): I32;
}
