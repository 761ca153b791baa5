//! The function templates `alyx new` writes, kept in the binary: one per
//! guest language, each a working function (it reads the request envelope,
//! uses a config value, logs, and answers JSON) with a `Makefile` that
//! builds `plugin.wasm`. The manifest and the README are written from the
//! table, so every template has the same shape; `{{name}}` in a file
//! becomes the function's name.

/// One language's template.
pub struct Template {
    /// What `--lang` takes.
    pub lang: &'static str,
    /// The tools its build runs (besides `make`), as `alyx new --list`
    /// shows them.
    pub toolchain: &'static str,
    /// How to install them.
    pub install: &'static str,
    /// What `build.watch` watches, relative to the function folder.
    pub watch: &'static [&'static str],
    /// Path in the function folder, and text.
    pub files: &'static [(&'static str, &'static str)],
}

pub const TEMPLATES: &[Template] = &[
    Template {
        lang: "assemblyscript",
        toolchain: "Node.js and npm (the Makefile installs @extism/as-pdk and assemblyscript)",
        install: "https://nodejs.org, or your package manager (apt install nodejs npm)",
        watch: &["assembly/**", "package.json"],
        files: &[
            ("package.json", include_str!("assemblyscript/package.json")),
            ("assembly/index.ts", include_str!("assemblyscript/assembly/index.ts")),
            ("Makefile", include_str!("assemblyscript/Makefile")),
        ],
    },
    Template {
        lang: "rust",
        toolchain: "Rust with the wasm32-unknown-unknown target (the extism-pdk crate)",
        install: "https://rustup.rs, then `rustup target add wasm32-unknown-unknown`",
        watch: &["src/**", "Cargo.toml"],
        files: &[
            ("Cargo.toml", include_str!("rust/Cargo.toml.tmpl")),
            ("src/lib.rs", include_str!("rust/src/lib.rs")),
            ("Makefile", include_str!("rust/Makefile")),
        ],
    },
    Template {
        lang: "go",
        toolchain: "TinyGo and Go (github.com/extism/go-pdk)",
        install: "https://tinygo.org/getting-started/install/ and https://go.dev/dl/",
        watch: &["*.go", "go.mod"],
        files: &[
            ("main.go", include_str!("go/main.go")),
            ("go.mod", include_str!("go/go.mod")),
            ("Makefile", include_str!("go/Makefile")),
        ],
    },
    Template {
        lang: "js",
        toolchain: "extism-js (the Extism JS PDK's compiler) and binaryen's wasm-merge",
        install: "https://github.com/extism/js-pdk#install-the-compiler",
        watch: &["index.js", "index.d.ts"],
        files: &[
            ("index.js", include_str!("js/index.js")),
            ("index.d.ts", include_str!("js/index.d.ts")),
            ("Makefile", include_str!("js/Makefile")),
        ],
    },
    Template {
        lang: "c",
        toolchain: "zig cc (or clang with the wasm32 target and wasm-ld: make CC=clang)",
        install: "https://ziglang.org/download/, or `pip install ziglang` and make CC=\"python3 -m ziglang cc\"",
        watch: &["*.c", "*.h"],
        files: &[("main.c", include_str!("c/main.c")), ("Makefile", include_str!("c/Makefile"))],
    },
    Template {
        lang: "zig",
        toolchain: "Zig 0.15 or newer",
        install: "https://ziglang.org/download/, or `pip install ziglang` and make ZIG=\"python3 -m ziglang\"",
        watch: &["src/**"],
        files: &[
            ("src/main.zig", include_str!("zig/src/main.zig")),
            ("Makefile", include_str!("zig/Makefile")),
        ],
    },
];

/// The template for `lang`.
pub fn find(lang: &str) -> Option<&'static Template> {
    TEMPLATES.iter().find(|t| t.lang == lang)
}

impl Template {
    /// Every file of a function `name` from this template: path and text.
    pub fn render(&self, name: &str) -> Vec<(String, String)> {
        let mut files: Vec<(String, String)> = self
            .files
            .iter()
            .map(|(path, text)| (path.to_string(), text.replace("{{name}}", name)))
            .collect();
        files.push(("manifest.yaml".into(), self.manifest(name)));
        files.push(("README.md".into(), self.readme(name)));
        files.push((".gitignore".into(), "plugin.wasm\nnode_modules/\ntarget/\n".into()));
        files
    }

    fn manifest(&self, name: &str) -> String {
        let watch: Vec<String> = self.watch.iter().map(|w| format!("\"{w}\"")).collect();
        format!(
            "# {name}: written by `alyx new {name} --lang {lang}`. `alyx manifest` lists every field.\n\
             name: {name}\n\
             entrypoint: handle\n\
             plugin: plugin.wasm\n\
             config: {{greeting: Hello}}\n\
             build: {{command: make, watch: [{watch}], output: plugin.wasm}}\n",
            lang = self.lang,
            watch = watch.join(", "),
        )
    }

    fn readme(&self, name: &str) -> String {
        format!(
            "# {name}\n\n\
             An alyx function in {lang}. Given `{{\"name\": \"Ada\"}}` it answers\n\
             `{{\"greeting\": \"Hello, Ada!\"}}` (the word comes from `config.greeting` in\n\
             `manifest.yaml`), logs one line, and fails with status 422 when the name is\n\
             empty.\n\n\
             Needs: {toolchain} ({install}), and make.\n\n\
             ```sh\n\
             make                                   # builds plugin.wasm\n\
             alyx call . --input '{{\"name\": \"Ada\"}}'   # calls it as the server would\n\
             alyx dev --dir ..                      # serves it; rebuilds on every change\n\
             curl -s localhost:8090/api/functions/{name} -d '{{\"name\": \"Ada\"}}'\n\
             ```\n\n\
             What a function receives and returns: docs/writing-functions.md in the alyx\n\
             repository.\n",
            lang = self.lang,
            toolchain = self.toolchain,
            install = self.install,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_renders_its_name_and_a_manifest_with_a_build() {
        for template in TEMPLATES {
            let files = template.render("greeter");
            let text: String = files.iter().map(|(_, text)| text.as_str()).collect();
            assert!(!text.contains("{{name}}"), "{}: a placeholder is left", template.lang);
            let manifest = &files.iter().find(|(path, _)| path == "manifest.yaml").unwrap().1;
            let parsed = crate::manifest::parse(std::path::Path::new("greeter"), "m.yaml".as_ref(), manifest);
            assert!(parsed.problems.is_empty(), "{}: {:?}", template.lang, parsed.problems);
            assert!(files.iter().any(|(path, _)| path == "Makefile"), "{}", template.lang);
        }
    }
}
