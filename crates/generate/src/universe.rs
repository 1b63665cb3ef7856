//! The synthetic universe the generator draws from: agencies with bureaus, services spread over
//! the seven A-11 service types with heavy-tailed volumes, offices in many states, survey
//! collections (one per service and channel) with their weighting. Built
//! deterministically from the seed; written to the lake as the services and offices dimensions.

use cx_domain::{Channel, ServiceType, US_REGIONS};
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution as _, LogNormal, Normal, Pareto};
use rand_pcg::Pcg64Mcg;

/// Departments and agencies that report CX data under A-11 280, with some of their bureaus.
type AgencyRow = (&'static str, &'static str, &'static [(&'static str, &'static str)]);
const AGENCIES: &[AgencyRow] = &[
    (
        "VA",
        "Department of Veterans Affairs",
        &[("VBA", "Veterans Benefits Administration"), ("VHA", "Veterans Health Administration"), ("NCA", "National Cemetery Administration")],
    ),
    ("SSA", "Social Security Administration", &[("ORSI", "Retirement and Survivors Insurance"), ("ODI", "Disability Insurance")]),
    ("TREAS", "Department of the Treasury", &[("IRS", "Internal Revenue Service"), ("FS", "Bureau of the Fiscal Service"), ("MINT", "United States Mint")]),
    (
        "DHS",
        "Department of Homeland Security",
        &[
            ("USCIS", "U.S. Citizenship and Immigration Services"),
            ("TSA", "Transportation Security Administration"),
            ("CBP", "U.S. Customs and Border Protection"),
            ("FEMA", "Federal Emergency Management Agency"),
        ],
    ),
    (
        "HHS",
        "Department of Health and Human Services",
        &[("CMS", "Centers for Medicare & Medicaid Services"), ("NIH", "National Institutes of Health"), ("CDC", "Centers for Disease Control and Prevention")],
    ),
    (
        "USDA",
        "Department of Agriculture",
        &[("FSA", "Farm Service Agency"), ("FNS", "Food and Nutrition Service"), ("FS", "Forest Service"), ("RD", "Rural Development")],
    ),
    ("DOI", "Department of the Interior", &[("NPS", "National Park Service"), ("BLM", "Bureau of Land Management"), ("FWS", "Fish and Wildlife Service")]),
    ("DOS", "Department of State", &[("CA", "Bureau of Consular Affairs")]),
    ("ED", "Department of Education", &[("FSA", "Federal Student Aid")]),
    ("DOL", "Department of Labor", &[("ETA", "Employment and Training Administration"), ("OSHA", "Occupational Safety and Health Administration")]),
    ("HUD", "Department of Housing and Urban Development", &[("FHA", "Federal Housing Administration"), ("PIH", "Public and Indian Housing")]),
    (
        "DOC",
        "Department of Commerce",
        &[("USPTO", "U.S. Patent and Trademark Office"), ("CENSUS", "Census Bureau"), ("NOAA", "National Oceanic and Atmospheric Administration")],
    ),
    ("DOT", "Department of Transportation", &[("FAA", "Federal Aviation Administration"), ("NHTSA", "National Highway Traffic Safety Administration")]),
    ("DOE", "Department of Energy", &[("EERE", "Energy Efficiency and Renewable Energy")]),
    ("DOJ", "Department of Justice", &[("ATF", "Bureau of Alcohol, Tobacco, Firearms and Explosives"), ("FBI", "Federal Bureau of Investigation")]),
    ("SBA", "Small Business Administration", &[("OCA", "Office of Capital Access"), ("ODA", "Office of Disaster Assistance")]),
    ("OPM", "Office of Personnel Management", &[("RS", "Retirement Services"), ("HRS", "Human Resources Solutions")]),
    ("GSA", "General Services Administration", &[("TTS", "Technology Transformation Services"), ("FAS", "Federal Acquisition Service")]),
    ("NASA", "National Aeronautics and Space Administration", &[("OSTEM", "Office of STEM Engagement")]),
    ("EPA", "Environmental Protection Agency", &[("OAR", "Office of Air and Radiation")]),
    ("NARA", "National Archives and Records Administration", &[("RS", "Research Services")]),
    ("DOD", "Department of Defense", &[("DFAS", "Defense Finance and Accounting Service"), ("DHA", "Defense Health Agency")]),
    ("USAID", "U.S. Agency for International Development", &[("BHA", "Bureau for Humanitarian Assistance")]),
    ("NSF", "National Science Foundation", &[("OIA", "Office of Integrative Activities")]),
    ("USPS", "United States Postal Service", &[("RET", "Retail Operations"), ("PS", "Passport Services")]),
];

const CITIES: &[(&str, &str)] = &[
    ("Washington", "DC"),
    ("Baltimore", "MD"),
    ("Philadelphia", "PA"),
    ("New York", "NY"),
    ("Boston", "MA"),
    ("Atlanta", "GA"),
    ("Miami", "FL"),
    ("Tampa", "FL"),
    ("Chicago", "IL"),
    ("Detroit", "MI"),
    ("Cleveland", "OH"),
    ("Columbus", "OH"),
    ("Indianapolis", "IN"),
    ("Milwaukee", "WI"),
    ("Minneapolis", "MN"),
    ("St. Louis", "MO"),
    ("Kansas City", "MO"),
    ("Dallas", "TX"),
    ("Houston", "TX"),
    ("San Antonio", "TX"),
    ("El Paso", "TX"),
    ("Oklahoma City", "OK"),
    ("New Orleans", "LA"),
    ("Little Rock", "AR"),
    ("Nashville", "TN"),
    ("Memphis", "TN"),
    ("Louisville", "KY"),
    ("Charlotte", "NC"),
    ("Raleigh", "NC"),
    ("Richmond", "VA"),
    ("Norfolk", "VA"),
    ("Denver", "CO"),
    ("Salt Lake City", "UT"),
    ("Phoenix", "AZ"),
    ("Tucson", "AZ"),
    ("Albuquerque", "NM"),
    ("Las Vegas", "NV"),
    ("Los Angeles", "CA"),
    ("San Diego", "CA"),
    ("San Francisco", "CA"),
    ("Sacramento", "CA"),
    ("Portland", "OR"),
    ("Seattle", "WA"),
    ("Boise", "ID"),
    ("Anchorage", "AK"),
    ("Honolulu", "HI"),
    ("San Juan", "PR"),
    ("Omaha", "NE"),
    ("Des Moines", "IA"),
    ("Birmingham", "AL"),
    ("Jackson", "MS"),
    ("Columbia", "SC"),
    ("Hartford", "CT"),
    ("Providence", "RI"),
    ("Burlington", "VT"),
    ("Portland", "ME"),
    ("Manchester", "NH"),
    ("Newark", "NJ"),
    ("Wilmington", "DE"),
    ("Charleston", "WV"),
    ("Billings", "MT"),
    ("Cheyenne", "WY"),
    ("Fargo", "ND"),
    ("Sioux Falls", "SD"),
    ("Hagatna", "GU"),
];

/// Service name stems by service type, combined with the bureau's name.
fn service_stems(t: ServiceType) -> &'static [&'static str] {
    match t {
        ServiceType::Administrative => &["records request", "account management", "appointment scheduling", "identity verification"],
        ServiceType::Benefits => &["benefit application", "claims processing", "disability benefits", "loan servicing", "grant application"],
        ServiceType::Compliance => &["tax filing", "permit application", "inspection", "licensing", "reporting portal"],
        ServiceType::Recreation => &["park reservations", "visitor services", "campground booking", "recreation pass"],
        ServiceType::Informational => &["help center", "contact center", "website information", "public inquiries"],
        ServiceType::DataResearch => &["data portal", "research library", "statistics downloads", "archival research"],
        ServiceType::Regulatory => &["rulemaking comments", "regulatory guidance", "complaint intake", "enforcement inquiries"],
    }
}

#[derive(Debug, Clone)]
pub struct Agency {
    pub code: String,
    pub name: String,
    /// Bureau codes (`VA-VBA`) and names.
    pub bureaus: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
pub struct Office {
    pub id: String,
    pub name: String,
    pub city: String,
    pub state: String,
    pub agency: usize,
}

#[derive(Debug, Clone)]
pub struct Service {
    pub id: String,
    pub name: String,
    pub agency: usize,
    pub bureau: usize,
    pub service_type: ServiceType,
    pub channels: Vec<Channel>,
    /// Share of all responses (sums to 1 over services); heavy-tailed.
    pub volume: f64,
    /// Offices that serve this service in person or by phone (indices into `offices`).
    pub offices: Vec<usize>,
    /// The inventory fields of A-11 280.5 (`inventory()`).
    pub description: String,
    pub org_unit: String,
    /// Designated HISP service: the three largest of each agency.
    pub designated: bool,
}

/// A survey instrument: one per service and channel (its form over time: `model::Effects::form`).
#[derive(Debug, Clone)]
pub struct Collection {
    pub id: String,
    pub service: usize,
    pub channel: Channel,
    /// Share of the service's responses collected here.
    pub share: f64,
    /// Whether respondents carry non-response adjustment weights (else weight 1.0).
    pub weighted: bool,
}

#[derive(Debug, Clone)]
pub struct Universe {
    pub agencies: Vec<Agency>,
    pub offices: Vec<Office>,
    pub services: Vec<Service>,
    pub collections: Vec<Collection>,
}

/// Channels a service of this type is typically delivered through, most common first.
fn typical_channels(t: ServiceType) -> &'static [Channel] {
    use Channel::*;
    match t {
        ServiceType::Benefits => &[Digital, Phone, InPerson, Mail],
        ServiceType::Administrative => &[Digital, Phone, InPerson, Email],
        ServiceType::Compliance => &[Digital, Mail, Phone, InPerson],
        ServiceType::Recreation => &[InPerson, Digital, Kiosk, Phone],
        ServiceType::Informational => &[Digital, Phone, Chat, Email],
        ServiceType::DataResearch => &[Digital, Email],
        ServiceType::Regulatory => &[Digital, Email, Mail],
    }
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

fn service_type_phrase(t: ServiceType) -> &'static str {
    match t {
        ServiceType::Administrative => "an administrative service customers use to manage their records and accounts",
        ServiceType::Benefits => "a benefits service that decides on and pays what customers are eligible for",
        ServiceType::Compliance => "a compliance service through which customers meet their obligations",
        ServiceType::Recreation => "a recreation service for visitors to public lands and sites",
        ServiceType::Informational => "an informational service answering customers' questions",
        ServiceType::DataResearch => "a data and research service giving access to public information",
        ServiceType::Regulatory => "a regulatory service for rules, guidance and complaints",
    }
}

impl Service {
    /// The service as an inventory record of the lake.
    pub fn inventory(&self, agencies: &[Agency]) -> cx_domain::inventory::ServiceRecord {
        let agency = &agencies[self.agency];
        let digital = self.channels.iter().any(|c| cx_domain::inventory::is_digital(*c));
        cx_domain::inventory::ServiceRecord {
            id: self.id.clone(),
            name: self.name.clone(),
            description: self.description.clone(),
            agency: agency.code.clone(),
            agency_name: agency.name.clone(),
            bureau: agency.bureaus[self.bureau].0.clone(),
            bureau_name: agency.bureaus[self.bureau].1.clone(),
            org_unit: self.org_unit.clone(),
            service_type: self.service_type,
            channels: self.channels.clone(),
            designated: self.designated,
            non_digital_reason: (!digital).then(|| match self.service_type {
                ServiceType::Recreation => "The service is the on-site visit itself".to_string(),
                _ => "Identity and signatures are verified in person".to_string(),
            }),
            digitization_options: if digital {
                Vec::new()
            } else {
                vec!["online reservations and payment".into(), "remote identity proofing with Login.gov".into()]
            },
        }
    }
}

impl Universe {
    /// Builds the universe for `seed` with about `n_services` services.
    pub fn build(seed: u64, n_services: usize) -> Universe {
        let mut rng = Pcg64Mcg::seed_from_u64(seed ^ 0x5eed_0001);
        let agencies: Vec<Agency> = AGENCIES
            .iter()
            .map(|(code, name, bureaus)| Agency {
                code: code.to_string(),
                name: name.to_string(),
                bureaus: bureaus.iter().map(|(b, n)| (format!("{code}-{b}"), n.to_string())).collect(),
            })
            .collect();

        // Agency size: heavy-tailed, the big benefit agencies first.
        let size = Pareto::new(1.0, 1.3).expect("valid pareto");
        let agency_size: Vec<f64> = (0..agencies.len()).map(|i| size.sample(&mut rng) / (1.0 + i as f64 * 0.08)).collect();

        // Offices: 3-20 per agency depending on size, in distinct cities where possible.
        let mut offices = Vec::new();
        for (a, agency) in agencies.iter().enumerate() {
            let n = (3.0 + agency_size[a] * 4.0).min(20.0) as usize;
            let start = rng.random_range(0..CITIES.len());
            for k in 0..n {
                let (city, state) = CITIES[(start + k * 7) % CITIES.len()];
                offices.push(Office {
                    id: format!("{}-{:03}", agency.code, k + 1),
                    name: format!("{} {} office", agency.code, city),
                    city: city.to_string(),
                    state: state.to_string(),
                    agency: a,
                });
            }
        }

        // Services: agencies get services in proportion to size (at least two).
        let total_size: f64 = agency_size.iter().sum();
        let volume = LogNormal::new(0.0, 1.4).expect("valid lognormal");
        let mut services = Vec::new();
        for (a, agency) in agencies.iter().enumerate() {
            let n = ((agency_size[a] / total_size) * n_services as f64).round().max(2.0) as usize;
            let agency_offices: Vec<usize> = (0..offices.len()).filter(|&o| offices[o].agency == a).collect();
            for k in 0..n {
                let bureau = k % agency.bureaus.len();
                // Spread the seven types over the services; benefits and informational are most common.
                let service_type = match rng.random_range(0..12) {
                    0..=2 => ServiceType::Benefits,
                    3..=4 => ServiceType::Informational,
                    5..=6 => ServiceType::Administrative,
                    7 => ServiceType::Compliance,
                    8 => ServiceType::Recreation,
                    9..=10 => ServiceType::DataResearch,
                    _ => ServiceType::Regulatory,
                };
                let typical = typical_channels(service_type);
                let n_channels = rng.random_range(1..=typical.len());
                let channels = typical[..n_channels].to_vec();
                let stems = service_stems(service_type);
                let stem = stems[rng.random_range(0..stems.len())];
                let n_off = if channels.iter().any(|c| matches!(c, Channel::InPerson | Channel::Phone | Channel::Kiosk)) {
                    rng.random_range(1..=agency_offices.len().min(8))
                } else {
                    0
                };
                let first = rng.random_range(0..agency_offices.len());
                let service_offices = (0..n_off).map(|i| agency_offices[(first + i) % agency_offices.len()]).collect();
                services.push(Service {
                    id: format!("{}-S{:02}", agency.code, k + 1),
                    name: format!("{} {}", agency.bureaus[bureau].1, stem),
                    agency: a,
                    bureau,
                    service_type,
                    channels,
                    volume: volume.sample(&mut rng) * agency_size[a],
                    offices: service_offices,
                    description: format!("{} of the {}: {}", capitalized(stem), agency.bureaus[bureau].1, service_type_phrase(service_type)),
                    org_unit: format!("{}, {} operations", agency.bureaus[bureau].1, stem),
                    designated: false,
                });
            }
        }
        let total: f64 = services.iter().map(|s| s.volume).sum();
        for s in &mut services {
            s.volume /= total;
        }
        for a in 0..agencies.len() {
            let mut own: Vec<usize> = (0..services.len()).filter(|&i| services[i].agency == a).collect();
            own.sort_by(|&x, &y| services[y].volume.total_cmp(&services[x].volume).then(x.cmp(&y)));
            for &i in own.iter().take(3) {
                services[i].designated = true;
            }
        }

        // Collections: one per service and channel. The channel mix decays with the channel's rank.
        let mut collections = Vec::new();
        for (si, s) in services.iter().enumerate() {
            let raw: Vec<f64> = (0..s.channels.len()).map(|k| 0.55f64.powi(k as i32)).collect();
            let sum: f64 = raw.iter().sum();
            for (k, ch) in s.channels.iter().enumerate() {
                collections.push(Collection {
                    id: format!("{}-{}", s.id, ch.as_str()),
                    service: si,
                    channel: *ch,
                    share: raw[k] / sum,
                    weighted: rng.random::<f64>() < 0.4,
                });
            }
        }
        Universe { agencies, offices, services, collections }
    }

    /// A random US region for a respondent not tied to an office (population-like skew).
    pub fn random_region(rng: &mut Pcg64Mcg) -> &'static str {
        // Larger states first in US_REGIONS order is not population order; skew towards the
        // first cities' states instead by drawing from CITIES half the time.
        if rng.random::<f64>() < 0.5 {
            CITIES[rng.random_range(0..CITIES.len())].1
        } else {
            US_REGIONS[rng.random_range(0..US_REGIONS.len())]
        }
    }
}

/// A standard normal draw (shared helper for the model).
pub fn std_normal(rng: &mut Pcg64Mcg) -> f64 {
    rng.sample(rand_distr::StandardNormal)
}

/// A normal draw with the given spread.
pub fn normal(rng: &mut Pcg64Mcg, sd: f64) -> f64 {
    Normal::new(0.0, sd).expect("valid sd").sample(rng)
}
