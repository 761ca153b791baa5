//! `alyx manifest` (also `alyx help manifest`): prints the manifest
//! reference, every field with its default, from the binary.

use crate::cli::{Args, Opt};
use crate::error::Error;

const USAGE: &str = "usage: alyx manifest

Prints the manifest reference: every field of a function's manifest.yaml
with its default. `alyx help manifest` prints the same.";

pub fn options() -> &'static [Opt] {
    &[]
}

pub fn help() -> String {
    USAGE.to_string()
}

pub fn run(args: Args) -> Result<i32, Error> {
    super::no_positionals(&args)?;
    crate::cli::out(crate::manifest::REFERENCE.trim_end());
    Ok(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_reference_names_every_field_the_parser_reads() {
        for field in crate::manifest::field_names() {
            let documented = crate::manifest::REFERENCE.lines().any(|l| l.starts_with(&format!("{field}:")));
            assert!(documented, "{field} is missing from src/manifest/reference.txt");
        }
    }
}
