//! Finds the hook files: `*.pb.js` directly inside the hooks directory, in
//! file-name order (as PocketBase loads them). Other files, sub-directories
//! and hidden files are ignored.

use std::path::Path;

/// Largest hook file read; a bigger one is refused at startup.
pub const MAX_HOOK_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// One hook file: its name (for error messages) and its text.
#[derive(Debug, Clone)]
pub struct HookFile {
    pub name: String,
    pub source: String,
}

/// The hook files of `dir`, sorted by name; empty when `dir` does not exist.
pub fn load(dir: &Path) -> Result<Vec<HookFile>, String> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("cannot read {}: {e}", dir.display())),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".pb.js") || name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        let meta = std::fs::metadata(&path).map_err(|e| format!("{name}: {e}"))?;
        if !meta.is_file() {
            continue;
        }
        if meta.len() > MAX_HOOK_FILE_BYTES {
            return Err(format!("{name}: larger than {MAX_HOOK_FILE_BYTES} bytes"));
        }
        let source = std::fs::read_to_string(&path).map_err(|e| format!("{name}: {e}"))?;
        files.push(HookFile { name, source });
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_pb_js_files_are_loaded_in_name_order() {
        let dir = tempfile::tempdir().expect("temp dir");
        for (name, text) in [
            ("b.pb.js", "b"),
            ("a.pb.js", "a"),
            ("c.js", "not a hook"),
            (".hidden.pb.js", "hidden"),
            ("notes.txt", "text"),
        ] {
            std::fs::write(dir.path().join(name), text).expect("write");
        }
        std::fs::create_dir(dir.path().join("d.pb.js")).expect("mkdir");

        let names: Vec<String> = load(dir.path())
            .expect("loads")
            .into_iter()
            .map(|f| f.name)
            .collect();

        assert_eq!(names, ["a.pb.js", "b.pb.js"], "only *.pb.js files, sorted");
    }

    #[test]
    fn a_missing_directory_means_no_hooks() {
        let dir = tempfile::tempdir().expect("temp dir");
        let files = load(&dir.path().join("absent")).expect("not an error");
        assert!(files.is_empty(), "no files from a missing dir");
    }
}
