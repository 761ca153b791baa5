//! `alyx new NAME [--lang L] [--dir DIR]`: writes a working function folder
//! from a template in the binary (see `templates`); `alyx new --list` shows
//! the languages, the toolchain each needs and how to install it.

use std::path::Path;

use crate::cli::{Args, Opt};
use crate::error::Error;
use crate::templates::{self, TEMPLATES, Template};

const USAGE: &str = "usage: alyx new NAME [--lang LANG] [--dir DIR]
       alyx new --list

Writes a new function folder DIR/NAME (DIR: ./functions) from the template
for LANG (default assemblyscript): a manifest.yaml with a build section,
the source, a Makefile that builds plugin.wasm, and a README. The function
reads the request envelope, uses a config value, logs and answers JSON.
`alyx dev` in the folder holding DIR builds and serves it.

options:
  --lang LANG   assemblyscript, rust, go, js, c or zig
  --dir DIR     the functions folder to write into (default: functions)
  --list        list the languages and the toolchain each needs";

pub fn options() -> &'static [Opt] {
    const OPTIONS: &[Opt] = &[Opt::value("lang"), Opt::value("dir"), Opt::switch("list")];
    OPTIONS
}

pub fn help() -> String {
    USAGE.to_string()
}

pub fn run(args: Args) -> Result<i32, Error> {
    if args.flag("list") {
        crate::cli::out(list().trim_end());
        return Ok(0);
    }
    let name = match args.positionals.as_slice() {
        [name] => name,
        [] => return Err(Error::Usage("the function's NAME is missing".into())),
        [_, extra, ..] => return Err(Error::Usage(format!("unexpected argument {extra:?}"))),
    };
    let lang = args.value("lang").unwrap_or("assemblyscript");
    let template = templates::find(lang)
        .ok_or_else(|| Error::Usage(format!("no template for {lang:?} (`alyx new --list` shows them)")))?;
    check_name(name)?;
    let folder = Path::new(args.value("dir").unwrap_or("functions")).join(name);
    write(template, name, &folder)?;
    crate::cli::out(&next_steps(template, &folder));
    Ok(0)
}

/// Every template, the toolchain it needs and how to install it.
fn list() -> String {
    let mut out = String::new();
    for t in TEMPLATES {
        out.push_str(&format!("{:<15} needs {}\n{:<15} install: {}\n", t.lang, t.toolchain, "", t.install));
    }
    out
}

fn check_name(name: &str) -> Result<(), Error> {
    if !crate::manifest::valid_name(name) {
        let rule = "lowercase letters, digits, - and _, at most 64";
        return Err(Error::Usage(format!("{name:?} cannot name a function ({rule})")));
    }
    if crate::http::router::RESERVED_NAMES.contains(&name) {
        return Err(Error::Usage(format!("{name:?} is reserved by the HTTP API; choose another name")));
    }
    Ok(())
}

/// Writes the template's files into `folder`, which must not exist yet.
fn write(template: &Template, name: &str, folder: &Path) -> Result<(), Error> {
    if folder.exists() {
        return Err(Error::Usage(format!(
            "{} exists already; choose another NAME or --dir",
            folder.display()
        )));
    }
    for (path, text) in template.render(name) {
        let path = folder.join(path);
        let parent = path.parent().unwrap_or(folder);
        std::fs::create_dir_all(parent)
            .map_err(|source| Error::Write { what: parent.display().to_string(), source })?;
        std::fs::write(&path, text)
            .map_err(|source| Error::Write { what: path.display().to_string(), source })?;
    }
    Ok(())
}

fn next_steps(template: &Template, folder: &Path) -> String {
    let dir = folder.parent().map(|d| d.display().to_string()).unwrap_or_default();
    format!(
        "created {folder} ({lang})\n\
         needs {toolchain}\n\
         next:\n  \
         alyx dev --dir {dir}     builds it, serves it and rebuilds on every change\n  \
         alyx call {folder} --input '{{\"name\": \"Ada\"}}'   once built (make -C {folder})",
        folder = folder.display(),
        lang = template.lang,
        toolchain = template.toolchain,
    )
}
