//! The one error type of every reader: which file, where in it (line, element, object) and why.

use std::fmt;

/// A file that could not be read, with the place in it and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportError {
    /// The file (as the user named it).
    pub file: String,
    /// Where in the file: `line 12`, `way 4711`, `CityObject "b1"`...; empty when the whole file is at fault.
    pub location: String,
    pub reason: String,
}

impl ImportError {
    pub fn new(
        file: impl Into<String>,
        location: impl Into<String>,
        reason: impl Into<String>,
    ) -> ImportError {
        ImportError {
            file: file.into(),
            location: location.into(),
            reason: reason.into(),
        }
    }

    /// An error about the file as a whole (cannot open, not the expected format...).
    pub fn file(file: impl Into<String>, reason: impl Into<String>) -> ImportError {
        ImportError::new(file, "", reason)
    }
}

/// Opens a file for a reader: its display name (for errors) and a buffered reader, or an error naming it.
pub fn open(
    path: &std::path::Path,
) -> Result<(String, std::io::BufReader<std::fs::File>), ImportError> {
    let name = path.display().to_string();
    let file = std::fs::File::open(path)
        .map_err(|e| ImportError::file(&name, format!("cannot open: {e}")))?;
    Ok((name, std::io::BufReader::new(file)))
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.location.is_empty() {
            write!(f, "{}: {}", self.file, self.reason)
        } else {
            write!(f, "{}: {}: {}", self.file, self.location, self.reason)
        }
    }
}

impl std::error::Error for ImportError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_file_place_and_reason() {
        assert_eq!(
            ImportError::new("a.csv", "line 3", "missing column lon").to_string(),
            "a.csv: line 3: missing column lon"
        );
        assert_eq!(
            ImportError::file("x.pbf", "truncated").to_string(),
            "x.pbf: truncated"
        );
    }
}
