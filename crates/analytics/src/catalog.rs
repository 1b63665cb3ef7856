//! The codes a lake knows (agencies, bureaus, services, offices) from its dimension tables, so a
//! filter naming an unknown code is an error naming the code, not a silently empty result.

use super::{AnalyticsError, Filter};
use cx_domain::{codes::is_region, Dimension};
use cx_lake::Lake;
use polars::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// Known values per dimension; a dimension without an entry is not checked.
    known: BTreeMap<Dimension, BTreeSet<String>>,
    pub services: Vec<ServiceInfo>,
    pub offices: Vec<OfficeInfo>,
}

/// A row of the services dimension: the inventory record of one service.
pub type ServiceInfo = cx_domain::inventory::ServiceRecord;

/// A row of the offices dimension.
#[derive(Debug, Clone, PartialEq)]
pub struct OfficeInfo {
    pub id: String,
    pub name: String,
    pub city: String,
    pub state: String,
    pub agency: String,
}

fn strings(df: &DataFrame, column: &str) -> PolarsResult<Vec<String>> {
    Ok(df.column(column)?.str()?.iter().map(|v| v.unwrap_or_default().to_string()).collect())
}

impl Catalog {
    /// Reads the dimension tables; a lake without them gets an unchecked catalog.
    pub fn load(lake: &Lake) -> Result<Catalog, AnalyticsError> {
        let mut known = BTreeMap::new();
        let mut offices = Vec::new();
        let services = cx_lake::services::read(lake)?;
        if !services.is_empty() {
            known.insert(Dimension::Agency, services.iter().map(|s| s.agency.clone()).collect());
            known.insert(Dimension::Bureau, services.iter().map(|s| s.bureau.clone()).collect());
            known.insert(Dimension::Service, services.iter().map(|s| s.id.clone()).collect());
        }
        if let Some(df) = lake.read_dimension(cx_lake::delta::Dimension::Offices)? {
            let col = |c: &str| strings(&df, c);
            let (id, name, city, state, agency) = (col("office_id")?, col("name")?, col("city")?, col("state")?, col("agency")?);
            for i in 0..df.height() {
                offices.push(OfficeInfo {
                    id: id[i].clone(),
                    name: name[i].clone(),
                    city: city[i].clone(),
                    state: state[i].clone(),
                    agency: agency[i].clone(),
                });
            }
            known.insert(Dimension::Office, id.into_iter().collect());
        }
        Ok(Catalog { known, services, offices })
    }

    /// The services and offices as the ingestion rules check codes against them.
    pub fn inventory(&self) -> cx_domain::validate::Inventory {
        use cx_domain::validate::{Inventory, ServiceCoding};
        let mut inv = Inventory::default();
        for s in &self.services {
            inv.services.insert(s.id.clone(), ServiceCoding { agency: s.agency.clone(), bureau: s.bureau.clone(), service_type: s.service_type });
        }
        for o in &self.offices {
            inv.offices.insert(o.id.clone(), o.agency.clone());
        }
        inv
    }

    /// The known values of `dim`, when the lake lists them.
    pub fn values(&self, dim: Dimension) -> Option<&BTreeSet<String>> {
        self.known.get(&dim)
    }

    /// Checks every code in `filter` against the catalog.
    pub fn check(&self, filter: &Filter) -> Result<(), AnalyticsError> {
        filter.validate()?;
        for (dim, values) in &filter.values {
            for v in values {
                let ok = match dim {
                    Dimension::Region => is_region(v),
                    Dimension::ServiceType => v.parse::<cx_domain::ServiceType>().is_ok(),
                    Dimension::Channel => v.parse::<cx_domain::Channel>().is_ok(),
                    Dimension::Stage => v.parse::<cx_domain::Stage>().is_ok(),
                    _ => self.known.get(dim).is_none_or(|k| k.contains(v)),
                };
                if !ok {
                    return Err(AnalyticsError::invalid(&super::filter::argument(*dim), format!("unknown {} '{}'", dim.as_str(), v)));
                }
            }
        }
        Ok(())
    }
}
