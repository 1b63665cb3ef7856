//! Numeric columns of any CSV file (a researcher's own data for `cxlake kda`), streamed row by
//! row. Empty cells and NA/NaN/null count as missing; anything else that is not a number is an
//! error naming the file, line and column.

use super::IngestError;
use std::path::Path;

/// What reading the complete rows found.
#[derive(Debug, Clone, PartialEq)]
pub struct RowCounts {
    /// Data rows in the file.
    pub read: u64,
    /// Rows with every requested column present, handed to the callback.
    pub complete: u64,
}

fn is_missing(cell: &str) -> bool {
    let c = cell.trim();
    c.is_empty() || ["na", "nan", "null", "n/a"].contains(&c.to_ascii_lowercase().as_str())
}

/// Calls `row` with the values of `columns` (in that order) for every row where all of them are
/// present (listwise deletion).
pub fn for_each_complete_row(path: &Path, columns: &[String], mut row: impl FnMut(&[f64])) -> Result<RowCounts, IngestError> {
    let shown = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|source| IngestError::Io { path: shown.clone(), source })?;
    let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(std::io::BufReader::new(file));
    let malformed = |e: csv::Error| IngestError::Malformed {
        path: shown.clone(),
        line: e.position().map_or(0, |p| p.line()),
        message: match e.kind() {
            csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
                format!("{len} fields where the header has {expected_len}")
            }
            csv::ErrorKind::Utf8 { .. } => "not valid UTF-8".to_string(),
            _ => e.to_string(),
        },
    };
    let header = reader.headers().map_err(malformed)?.clone();
    let index: Vec<usize> = columns
        .iter()
        .map(|c| {
            header.iter().position(|h| h.trim() == c).ok_or_else(|| IngestError::MissingColumn {
                path: shown.clone(),
                column: c.clone(),
                available: header.iter().collect::<Vec<_>>().join(", "),
            })
        })
        .collect::<Result<_, _>>()?;
    let mut counts = RowCounts { read: 0, complete: 0 };
    let mut values = vec![0.0; columns.len()];
    let mut record = csv::StringRecord::new();
    while reader.read_record(&mut record).map_err(malformed)? {
        counts.read += 1;
        let line = record.position().map_or(0, |p| p.line());
        let mut complete = true;
        for (k, &i) in index.iter().enumerate() {
            let cell = record.get(i).unwrap_or("");
            if is_missing(cell) {
                complete = false;
                continue;
            }
            values[k] = cell.trim().parse::<f64>().ok().filter(|v| v.is_finite()).ok_or_else(|| IngestError::NotNumeric {
                path: shown.clone(),
                line,
                column: columns[k].clone(),
                value: cell.to_string(),
            })?;
        }
        if complete {
            counts.complete += 1;
            row(&values);
        }
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    #[test]
    fn reads_complete_rows_and_skips_missing() {
        let f = write("y,a,b\n1,2,3\n4,,6\n7,8,NA\n9,10,11\n");
        let mut rows = Vec::new();
        let counts = for_each_complete_row(f.path(), &["y".into(), "b".into()], |r| rows.push(r.to_vec())).unwrap();
        assert_eq!(counts, RowCounts { read: 4, complete: 3 });
        assert_eq!(rows, vec![vec![1.0, 3.0], vec![4.0, 6.0], vec![9.0, 11.0]]);
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let f = write("y,a\n1,2\n3,abc\n");
        let err = for_each_complete_row(f.path(), &["y".into(), "a".into()], |_| {}).unwrap_err().to_string();
        assert!(err.contains("line 3") && err.contains("'a'") && err.contains("'abc'"), "{err}");
        let err = for_each_complete_row(f.path(), &["z".into()], |_| {}).unwrap_err().to_string();
        assert!(err.contains("no column 'z'") && err.contains("y, a"), "{err}");
        let ragged = write("y,a\n1,2\n3\n");
        let err = for_each_complete_row(ragged.path(), &["y".into()], |_| {}).unwrap_err().to_string();
        assert!(err.contains("line 3") && err.contains("1 fields where the header has 2"), "{err}");
    }
}
