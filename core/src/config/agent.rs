//! The `[agent]` table checked: the host's id, where it listens, how often it samples, where
//! it stages runs, what its energy and time cost, and how it paces long runs (duty cycle,
//! temperature guard). Every error names the file, the line and the field.

use toml::Spanned;

use super::raw::RawAgent;
use super::validate::Cx;
use super::{AgentSettings, ConfigError};
use crate::layout;

impl Cx<'_> {
    pub(crate) fn agent(
        &self,
        spanned: &Spanned<RawAgent>,
        base_dir: &std::path::Path,
    ) -> Result<AgentSettings, ConfigError> {
        let a = spanned.get_ref();
        let id = match &a.id {
            Some(v) => {
                let id = v.get_ref().trim().to_string();
                if !layout::is_safe_name(&id) {
                    return Err(self.invalid(
                        v.span().start,
                        "agent.id".into(),
                        format!("'{id}' is not a valid id: use letters, digits, '-', '_' or '.', not starting with '.'"),
                    ));
                }
                Some(id)
            }
            None => None,
        };
        let listen = match &a.listen {
            Some(v) => v.get_ref().parse().map_err(|_| {
                self.invalid(
                    v.span().start,
                    "agent.listen".into(),
                    format!("'{}' is not an address like 127.0.0.1:9464", v.get_ref()),
                )
            })?,
            None => std::net::SocketAddr::from(([127, 0, 0, 1], 9464)),
        };
        let sample_hz = match &a.sample_hz {
            Some(v) => {
                let hz = *v.get_ref();
                if !(hz > 0.0 && hz <= 100.0) {
                    return Err(self.invalid(
                        v.span().start,
                        "agent.sample_hz".into(),
                        format!("must be above 0 and at most 100, found {hz}"),
                    ));
                }
                hz
            }
            None => 10.0,
        };
        let spool = a
            .spool
            .as_ref()
            .map(|v| self.interpolate(v, "agent.spool"))
            .transpose()?
            .map(|s| base_dir.join(s));
        let usd = |v: &Option<Spanned<f64>>, f: &str| {
            v.as_ref()
                .map(|v| self.usd(v, &format!("agent.{f}")))
                .transpose()
        };
        let duty = match &a.duty {
            Some(v) => {
                let d = *v.get_ref();
                if !(d > 0.0 && d <= 1.0) {
                    return Err(self.invalid(
                        v.span().start,
                        "agent.duty".into(),
                        format!("expected a share of the time above 0 and at most 1 (0.7 for 70%), found {d}"),
                    ));
                }
                Some(d)
            }
            None => None,
        };
        let celsius = |v: &Option<Spanned<f64>>, f: &str| -> Result<Option<f64>, ConfigError> {
            match v {
                Some(v) if !(v.get_ref().is_finite() && (0.0..=150.0).contains(v.get_ref())) => {
                    Err(self.invalid(
                        v.span().start,
                        format!("agent.{f}"),
                        format!("expected °C from 0 to 150, found {}", v.get_ref()),
                    ))
                }
                Some(v) => Ok(Some(*v.get_ref())),
                None => Ok(None),
            }
        };
        let max_temp_c = celsius(&a.max_temp_c, "max_temp_c")?;
        let resume_temp_c = celsius(&a.resume_temp_c, "resume_temp_c")?;
        if let (Some(r), Some(v)) = (a.resume_temp_c.as_ref(), max_temp_c)
            && *r.get_ref() >= v
        {
            return Err(self.invalid(
                r.span().start,
                "agent.resume_temp_c".into(),
                format!("must be below max_temp_c ({v}), found {}", r.get_ref()),
            ));
        }
        if let (Some(r), None) = (a.resume_temp_c.as_ref(), max_temp_c) {
            return Err(self.invalid(
                r.span().start,
                "agent.resume_temp_c".into(),
                "goes with max_temp_c, which is not set".into(),
            ));
        }
        Ok(AgentSettings {
            id,
            listen,
            sample_hz,
            spool,
            electricity_usd_per_kwh: usd(&a.electricity_usd_per_kwh, "electricity_usd_per_kwh")?,
            hardware_usd_per_hour: usd(&a.hardware_usd_per_hour, "hardware_usd_per_hour")?,
            duty,
            max_temp_c,
            resume_temp_c: resume_temp_c.or(max_temp_c.map(|m| m - 10.0)),
        })
    }
}
