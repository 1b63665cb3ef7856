//! The services dimension (the Delta table `dimensions/services`): the service inventory of
//! A-11 280.5 as one small table. Read whole into `domain::inventory::ServiceRecord`s, written
//! whole: an edit writes a new file and commits it in place of the old one
//! (`delta::replace_dimension`: a reader sees the old table or the new one), so the lake version
//! moves and every cache keyed on it lets go of the old inventory. Tables written before the
//! inventory had descriptions read with those fields empty.

use super::commit::WriteLock;
use super::delta::{dimension_files, replace_dimension, Dimension};
use super::error::StoreError;
use super::lake::Lake;
use arrow::array::{Array, ArrayRef, BooleanArray, ListArray, ListBuilder, RecordBatch, StringArray, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema};
use cx_domain::inventory::ServiceRecord;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::sync::Arc;

fn list_of_text(values: impl Iterator<Item = Vec<String>>) -> ListArray {
    let mut b = ListBuilder::new(StringBuilder::new()).with_field(Arc::new(Field::new("item", DataType::Utf8, false)));
    for v in values {
        for s in v {
            b.values().append_value(s);
        }
        b.append(true);
    }
    b.finish()
}

/// The services table as one record batch, sorted by service id.
pub fn batch(services: &[ServiceRecord]) -> RecordBatch {
    let mut sorted: Vec<&ServiceRecord> = services.iter().collect();
    sorted.sort_by(|a, b| a.id.cmp(&b.id));
    let text = |name: &str| Field::new(name, DataType::Utf8, false);
    let strings = |f: &dyn Fn(&ServiceRecord) -> &str| Arc::new(sorted.iter().map(|s| Some(f(s))).collect::<StringArray>()) as ArrayRef;
    let channels = list_of_text(sorted.iter().map(|s| s.channels.iter().map(|c| c.as_str().to_string()).collect()));
    let options = list_of_text(sorted.iter().map(|s| s.digitization_options.clone()));
    let schema = Arc::new(Schema::new(vec![
        text("service_id"),
        text("name"),
        text("description"),
        text("agency"),
        text("agency_name"),
        text("bureau"),
        text("bureau_name"),
        text("org_unit"),
        text("service_type"),
        Field::new("channels", channels.data_type().clone(), false),
        Field::new("designated", DataType::Boolean, false),
        Field::new("non_digital_reason", DataType::Utf8, true),
        Field::new("digitization_options", options.data_type().clone(), false),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            strings(&|s| &s.id),
            strings(&|s| &s.name),
            strings(&|s| &s.description),
            strings(&|s| &s.agency),
            strings(&|s| &s.agency_name),
            strings(&|s| &s.bureau),
            strings(&|s| &s.bureau_name),
            strings(&|s| &s.org_unit),
            strings(&|s| s.service_type.as_str()),
            Arc::new(channels),
            Arc::new(sorted.iter().map(|s| Some(s.designated)).collect::<BooleanArray>()),
            Arc::new(sorted.iter().map(|s| s.non_digital_reason.as_deref()).collect::<StringArray>()),
            Arc::new(options),
        ],
    )
    .expect("services batch matches its schema")
}

/// Replaces the services table under the write lock (the generator writes the first one so);
/// returns the new lake version.
pub fn replace(lock: &WriteLock, services: &[ServiceRecord], operation: String) -> Result<u64, StoreError> {
    replace_dimension(lock, Dimension::Services, &batch(services), operation)
}

/// Reads the services table; an empty list when the lake has none.
pub fn read(lake: &Lake) -> Result<Vec<ServiceRecord>, StoreError> {
    let Some(file) = dimension_files(lake, Dimension::Services)?.pop() else { return Ok(Vec::new()) };
    let fail = |reason: String| StoreError::Read { path: lake.locate(&file.path), reason };
    let reader = ParquetRecordBatchReaderBuilder::try_new(lake.objects().open(&file.path)?).and_then(|b| b.build()).map_err(|e| fail(e.to_string()))?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| fail(e.to_string()))?;
        let n = batch.num_rows();
        let text = |name: &str| -> Vec<Option<String>> {
            match batch.column_by_name(name).and_then(|c| c.as_any().downcast_ref::<StringArray>()) {
                Some(a) => (0..n).map(|i| a.is_valid(i).then(|| a.value(i).to_string())).collect(),
                None => vec![None; n],
            }
        };
        let list = |name: &str| -> Vec<Vec<String>> {
            match batch.column_by_name(name).and_then(|c| c.as_any().downcast_ref::<ListArray>()) {
                Some(a) => (0..n)
                    .map(|i| {
                        let v = a.value(i);
                        let s = v.as_any().downcast_ref::<StringArray>();
                        s.map(|s| (0..s.len()).filter(|j| s.is_valid(*j)).map(|j| s.value(j).to_string()).collect()).unwrap_or_default()
                    })
                    .collect(),
                None => vec![Vec::new(); n],
            }
        };
        let required = |name: &str| -> Result<Vec<String>, StoreError> {
            let v = text(name);
            v.iter().position(Option::is_none).map_or(Ok(()), |i| Err(fail(format!("row {}: column '{name}' is missing or empty", i + 1))))?;
            Ok(v.into_iter().map(Option::unwrap_or_default).collect())
        };
        let (id, name, agency, bureau, service_type) =
            (required("service_id")?, required("name")?, required("agency")?, required("bureau")?, required("service_type")?);
        let (description, agency_name, bureau_name, org_unit, reason) =
            (text("description"), text("agency_name"), text("bureau_name"), text("org_unit"), text("non_digital_reason"));
        let (channels, options) = (list("channels"), list("digitization_options"));
        let designated: Vec<bool> = match batch.column_by_name("designated").and_then(|c| c.as_any().downcast_ref::<BooleanArray>()) {
            Some(a) => (0..n).map(|i| a.is_valid(i) && a.value(i)).collect(),
            None => vec![false; n],
        };
        for i in 0..n {
            out.push(ServiceRecord {
                id: id[i].clone(),
                name: name[i].clone(),
                description: description[i].clone().unwrap_or_default(),
                agency: agency[i].clone(),
                agency_name: agency_name[i].clone().unwrap_or_default(),
                bureau: bureau[i].clone(),
                bureau_name: bureau_name[i].clone().unwrap_or_default(),
                org_unit: org_unit[i].clone().unwrap_or_default(),
                service_type: service_type[i].parse().map_err(|e| fail(format!("row {}: service_type: {e}", i + 1)))?,
                channels: channels[i].iter().map(|c| c.parse().map_err(|e| fail(format!("row {}: channels: {e}", i + 1)))).collect::<Result<_, _>>()?,
                designated: designated[i],
                non_digital_reason: reason[i].clone(),
                digitization_options: options[i].clone(),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cx_domain::{Channel, ServiceType};

    #[test]
    fn the_inventory_round_trips_and_an_edit_moves_the_version() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::create(dir.path().join("lake")).unwrap();
        assert!(read(&lake).unwrap().is_empty());
        let s = ServiceRecord {
            id: "VA-S001".into(),
            name: "Claims".into(),
            description: "File a claim".into(),
            agency: "VA".into(),
            agency_name: "Department of Veterans Affairs".into(),
            bureau: "VA-VBA".into(),
            bureau_name: "Veterans Benefits Administration".into(),
            org_unit: "Field Operations".into(),
            service_type: ServiceType::Benefits,
            channels: vec![Channel::InPerson],
            designated: true,
            non_digital_reason: Some("wet signatures".into()),
            digitization_options: vec!["e-signature".into(), "online upload".into()],
        };
        assert_eq!(read(&lake).unwrap(), vec![]);
        let lock = WriteLock::acquire(&lake).unwrap();
        // Three empty tables, then the services table's first commit.
        assert_eq!(replace(&lock, std::slice::from_ref(&s), "services: first".into()).unwrap(), 4);
        assert_eq!(read(&lake).unwrap(), vec![s.clone()]);
        let mut t = s.clone();
        t.id = "VA-S000".into();
        t.channels = vec![Channel::Digital];
        t.non_digital_reason = None;
        t.digitization_options.clear();
        assert_eq!(replace(&lock, &[s.clone(), t.clone()], "services: test".into()).unwrap(), 5);
        assert_eq!(read(&lake).unwrap(), vec![t, s], "sorted by id");
        // The edit replaced the file in one commit: one live file, the old one still on disk
        // for time travel until vacuum.
        assert_eq!(crate::delta::dimension_files(&lake, crate::delta::Dimension::Services).unwrap().len(), 1);
        assert!(std::path::Path::new(&lake.locate("dimensions/services/part-00000.parquet")).exists());
    }
}
