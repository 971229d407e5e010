//! The gauges one `/probe` answers, in blackbox_exporter's families: registered as the probe goes (a family is
//! present when blackbox_exporter would have registered it, even at 0), then written in the Prometheus text
//! format, families sorted by name and samples by labels, as Go's registry gathers them.

use std::fmt::Write;

type Labels = Vec<(&'static str, String)>;

struct Family {
    name: &'static str,
    help: &'static str,
    samples: Vec<(Labels, f64)>,
}

/// The families of one probe.
#[derive(Default)]
pub struct Families {
    families: Vec<Family>,
}

impl Families {
    /// Registers `name` (if it is not yet) and sets its unlabelled value.
    pub fn set(&mut self, name: &'static str, help: &'static str, value: f64) {
        self.set_labelled(name, help, Vec::new(), value);
    }

    /// Registers `name` (if it is not yet) and sets the sample with these labels.
    pub fn set_labelled(
        &mut self,
        name: &'static str,
        help: &'static str,
        labels: Labels,
        value: f64,
    ) {
        *self.sample(name, help, labels) = value;
    }

    /// Adds to a sample (0 when it did not exist): phases summed over round trips.
    pub fn add_labelled(
        &mut self,
        name: &'static str,
        help: &'static str,
        labels: Labels,
        value: f64,
    ) {
        *self.sample(name, help, labels) += value;
    }

    /// The sample of `name` with these labels, registered at 0 when it was not.
    fn sample(&mut self, name: &'static str, help: &'static str, labels: Labels) -> &mut f64 {
        let family = self.family(name, help);
        let i = match family.samples.iter().position(|(l, _)| *l == labels) {
            Some(i) => i,
            None => {
                family.samples.push((labels, 0.0));
                family.samples.len() - 1
            }
        };
        &mut family.samples[i].1
    }

    /// Registers a family with no sample yet (a labelled family with none is not written, as in Go).
    fn family(&mut self, name: &'static str, help: &'static str) -> &mut Family {
        let i = match self.families.iter().position(|f| f.name == name) {
            Some(i) => i,
            None => {
                self.families.push(Family {
                    name,
                    help,
                    samples: Vec::new(),
                });
                self.families.len() - 1
            }
        };
        &mut self.families[i]
    }

    pub fn get(&self, name: &str) -> Option<f64> {
        self.families
            .iter()
            .find(|f| f.name == name)
            .and_then(|f| f.samples.first())
            .map(|(_, v)| *v)
    }

    /// The Prometheus text exposition (version 0.0.4).
    pub fn encode(&self) -> String {
        let mut order: Vec<&Family> = self
            .families
            .iter()
            .filter(|f| !f.samples.is_empty())
            .collect();
        order.sort_by_key(|f| f.name);
        let mut out = String::new();
        for f in order {
            let _ = writeln!(out, "# HELP {} {}", f.name, f.help);
            let _ = writeln!(out, "# TYPE {} gauge", f.name);
            let mut samples: Vec<&(Labels, f64)> = f.samples.iter().collect();
            samples.sort_by(|a, b| a.0.cmp(&b.0));
            for (labels, v) in samples {
                out.push_str(f.name);
                if !labels.is_empty() {
                    let mut sorted = labels.clone();
                    sorted.sort();
                    out.push('{');
                    for (i, (k, val)) in sorted.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        let _ = write!(out, "{k}=\"{}\"", escape(val));
                    }
                    out.push('}');
                }
                let _ = writeln!(out, " {}", number(*v));
            }
        }
        out
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Go's float text where it matters to a parser: integers without a fraction, NaN and infinities by name.
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_are_sorted_labelled_ones_without_samples_are_left_out() {
        let mut f = Families::default();
        f.set(
            "probe_success",
            "Displays whether or not the probe was a success",
            0.0,
        );
        f.add_labelled(
            "probe_http_duration_seconds",
            "d",
            vec![("phase", "tls".into())],
            0.5,
        );
        f.add_labelled(
            "probe_http_duration_seconds",
            "d",
            vec![("phase", "connect".into())],
            0.25,
        );
        f.add_labelled(
            "probe_http_duration_seconds",
            "d",
            vec![("phase", "tls".into())],
            0.5,
        );
        f.family("probe_tls_version_info", "t");
        f.set(
            "probe_success",
            "Displays whether or not the probe was a success",
            1.0,
        );
        assert_eq!(
            f.encode(),
            "# HELP probe_http_duration_seconds d\n# TYPE probe_http_duration_seconds gauge\n\
             probe_http_duration_seconds{phase=\"connect\"} 0.25\nprobe_http_duration_seconds{phase=\"tls\"} 1\n\
             # HELP probe_success Displays whether or not the probe was a success\n# TYPE probe_success gauge\n\
             probe_success 1\n"
        );
    }
}
