//! Server-configuration sweeps (`llmpulse-agent sweep`): a matrix of server launch settings
//! (model file, flash attention, KV cache type, context size, GPU layers) × request settings
//! (temperatures), run point by point on servers the agent starts itself.
//!
//! A sweep file is an llmpulse config with one template target (its provider, model name and
//! request parameters) and a `[sweep]` table of axes. This module reads and checks that table
//! and plans the points ([`plan`]), explaining each one it skips; [`launch`] starts a point's
//! server; [`run`] runs the points; [`vllm`], [`ollama`] and [`lmstudio`] hold what only their
//! launchers have.

pub mod launch;
pub mod lmstudio;
pub mod ollama;
pub mod run;
pub mod vllm;

use std::path::{Path, PathBuf};
use std::time::Duration;

use llmpulse_core::suite::line_col;
use serde::{Deserialize, Serialize};
use toml::Spanned;

/// The `[sweep]` table as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSweep {
    name: Option<Spanned<String>>,
    launcher: Option<Spanned<String>>,
    binary: Option<Spanned<String>>,
    command: Option<Spanned<String>>,
    models: Spanned<Vec<Spanned<RawModel>>>,
    #[serde(default)]
    flash_attn: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    kv_cache_type: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    ctx_size: Option<Spanned<Vec<i64>>>,
    #[serde(default)]
    gpu_layers: Option<Spanned<Vec<i64>>>,
    #[serde(default)]
    temperatures: Option<Spanned<Vec<f64>>>,
    #[serde(default)]
    args: Vec<String>,
    /// Environment for every point's server (`${VAR}` filled in).
    #[serde(default)]
    env: std::collections::BTreeMap<String, Spanned<String>>,
    start_timeout: Option<Spanned<String>>,
    // vLLM's launcher: its names for the context and KV axes, and its own axes.
    max_model_len: Option<Spanned<Vec<i64>>>,
    kv_cache_dtype: Option<Spanned<Vec<String>>>,
    max_num_seqs: Option<Spanned<Vec<i64>>>,
    dtype: Option<Spanned<Vec<String>>>,
    enforce_eager: Option<Spanned<Vec<bool>>>,
    gpu_memory_utilization: Option<Spanned<Vec<f64>>>,
    // LM Studio's GPU offload (`lms load --gpu`): max, off or a share.
    gpu: Option<Spanned<Vec<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    file: String,
    /// Overrides what the file name and the server say.
    quantization: Option<String>,
}

#[derive(Deserialize)]
struct RawFile {
    sweep: Option<Spanned<RawSweep>>,
}

/// How a point's server is started.
#[derive(Debug, Clone, PartialEq)]
pub enum Launcher {
    /// llama.cpp's `llama-server`, spawned with `-m -fa -ctk -ctv -c -ngl --metrics --port`.
    LlamaCpp { binary: PathBuf },
    /// vLLM's OpenAI server, run by the Python that has vLLM installed (`binary`), with
    /// `--max-model-len --max-num-seqs --kv-cache-dtype --dtype --gpu-memory-utilization
    /// [--enforce-eager]` ([`vllm::command`]).
    Vllm { python: PathBuf },
    /// Ollama: `binary serve` with the point in `OLLAMA_*` variables, then `binary create` of
    /// the template target's model from a Modelfile with the point's `num_ctx` ([`ollama`]).
    Ollama { binary: PathBuf },
    /// LM Studio: `lms server start`, `lms load` with the point's context length and GPU
    /// offload, and at the end `lms unload` and `lms server stop` ([`lmstudio`]).
    LmStudio { binary: PathBuf },
    /// Any server: a command template with `{port}`, `{model}`, `{flash_attn}`,
    /// `{kv_cache_type}`, `{ctx_size}`, `{gpu_layers}`; ready when `/health` or `/v1/models`
    /// answers 200.
    Command { template: String },
}

impl Launcher {
    /// `server` in the records.
    pub fn server(&self) -> &'static str {
        match self {
            Launcher::LlamaCpp { .. } => "llamacpp",
            Launcher::Vllm { .. } => "vllm",
            Launcher::Ollama { .. } => "ollama",
            Launcher::LmStudio { .. } => "lmstudio",
            Launcher::Command { .. } => "command",
        }
    }
}

/// A checked `[sweep]` table.
#[derive(Debug, Clone)]
pub struct Sweep {
    pub name: String,
    pub launcher: Launcher,
    pub models: Vec<ModelFile>,
    pub flash_attn: Vec<String>,
    pub kv_cache_type: Vec<String>,
    pub ctx_size: Vec<u32>,
    pub gpu_layers: Vec<u32>,
    /// Empty: the template target's temperature only.
    pub temperatures: Vec<f64>,
    /// Extra arguments for every server (`-t 4`).
    pub args: Vec<String>,
    /// Environment variables for every server (`VLLM_CPU_KVCACHE_SPACE`, `CUDA_VISIBLE_DEVICES`).
    pub env: Vec<(String, String)>,
    pub start_timeout: Duration,
    /// The vLLM launcher's own axes.
    pub vllm: Option<vllm::Axes>,
    /// LM Studio's GPU offload axis (empty for other launchers).
    pub gpu: Vec<String>,
}

/// One model file of the sweep.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelFile {
    pub path: PathBuf,
    /// What a Modelfile's `FROM` takes: the file's path when it exists, else the name as given
    /// (a model Ollama has, `qwen2.5:7b`).
    pub from: String,
    pub quantization: Option<String>,
}

/// One server configuration: what the server is started with.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Point {
    pub model: ModelFile,
    pub flash_attn: String,
    pub kv_cache_type: String,
    pub ctx_size: u32,
    pub gpu_layers: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vllm: Option<vllm::Settings>,
    /// LM Studio's GPU offload.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu: Option<String>,
}

impl Point {
    /// The point's name in target names: `{sweep}-{quant}-fa{on}-kv{f16}-c{2048}[-ngl{n}]`.
    pub fn label(&self, sweep: &str) -> String {
        let quant = self
            .model
            .quantization
            .clone()
            .unwrap_or_else(|| file_stem(&self.model.path));
        if let Some(v) = &self.vllm {
            return format!(
                "{sweep}-{}-kv{}-c{}{}",
                quant.to_ascii_lowercase(),
                self.kv_cache_type,
                self.ctx_size,
                v.label()
            );
        }
        let mut s = format!(
            "{sweep}-{}-fa{}-kv{}-c{}",
            quant.to_ascii_lowercase(),
            self.flash_attn,
            self.kv_cache_type,
            self.ctx_size
        );
        if self.gpu_layers > 0 {
            s.push_str(&format!("-ngl{}", self.gpu_layers));
        }
        if let Some(g) = &self.gpu {
            s.push_str(&format!("-gpu{g}"));
        }
        s
    }
}

fn file_stem(p: &Path) -> String {
    p.file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default()
}

/// A point left out before anything starts, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Skipped {
    pub point: Point,
    pub why: String,
}

/// What a sweep file is wrong about: file, line, field.
#[derive(Debug, thiserror::Error)]
#[error("{origin}:{line}: sweep.{field}: {message}")]
pub struct SweepError {
    pub origin: String,
    pub line: usize,
    pub field: String,
    pub message: String,
}

const FLASH: [&str; 3] = ["on", "off", "auto"];
/// `OLLAMA_KV_CACHE_TYPE` values.
const OLLAMA_KV_TYPES: [&str; 3] = ["f16", "q8_0", "q4_0"];
const KV_TYPES: [&str; 9] = [
    "f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1",
];

impl Sweep {
    /// Reads `[sweep]` from a config's text; `base_dir` resolves relative model paths and
    /// `env` fills `${VAR}` in `binary` and `command`.
    pub fn parse(
        text: &str,
        origin: &str,
        base_dir: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Sweep, SweepError> {
        let err = |pos: usize, field: &str, message: String| SweepError {
            origin: origin.to_string(),
            line: line_col(text, pos).0,
            field: field.to_string(),
            message,
        };
        let file: RawFile = toml::from_str(text).map_err(|e| {
            let pos = e.span().map_or(0, |s| s.start);
            err(pos, "", e.message().to_string())
        })?;
        let Some(raw) = file.sweep else {
            return Err(err(0, "", "the file has no [sweep] table".into()));
        };
        let at = raw.span().start;
        let raw = raw.into_inner();
        let fill = |v: &Spanned<String>, field: &str| -> Result<String, SweepError> {
            expand(v.get_ref(), env).map_err(|m| err(v.span().start, field, m))
        };
        let launcher = match raw.launcher.as_ref().map(|l| l.get_ref().as_str()) {
            None | Some("llamacpp") => {
                let binary = match &raw.binary {
                    Some(b) => fill(b, "binary")?,
                    None => "llama-server".into(),
                };
                Launcher::LlamaCpp {
                    binary: PathBuf::from(binary),
                }
            }
            Some("lmstudio") => Launcher::LmStudio {
                binary: PathBuf::from(match &raw.binary {
                    Some(b) => fill(b, "binary")?,
                    None => "lms".into(),
                }),
            },
            Some("ollama") => Launcher::Ollama {
                binary: PathBuf::from(match &raw.binary {
                    Some(b) => fill(b, "binary")?,
                    None => "ollama".into(),
                }),
            },
            Some("vllm") => Launcher::Vllm {
                python: PathBuf::from(match &raw.binary {
                    Some(b) => fill(b, "binary")?,
                    None => "python3".into(),
                }),
            },
            Some("command") => {
                let Some(c) = &raw.command else {
                    return Err(err(
                        at,
                        "command",
                        "the command launcher needs a command template".into(),
                    ));
                };
                let template = fill(c, "command")?;
                if !template.contains("{port}") {
                    return Err(err(
                        c.span().start,
                        "command",
                        "the template must use {port}: the agent picks a free port for each point"
                            .into(),
                    ));
                }
                Launcher::Command { template }
            }
            Some(other) => {
                let l = raw.launcher.as_ref().map_or(at, |l| l.span().start);
                return Err(err(
                    l,
                    "launcher",
                    format!(
                        "'{other}' is not a launcher: use llamacpp, vllm, ollama, lmstudio or command"
                    ),
                ));
            }
        };
        let name = raw
            .name
            .as_ref()
            .map(|n| n.get_ref().clone())
            .unwrap_or_else(|| "sweep".into());
        if !llmpulse_core::layout::is_safe_name(&name) {
            let pos = raw.name.as_ref().map_or(at, |n| n.span().start);
            return Err(err(
                pos,
                "name",
                format!("'{name}': use letters, digits, '-', '_' or '.'"),
            ));
        }
        if raw.models.get_ref().is_empty() {
            return Err(err(
                raw.models.span().start,
                "models",
                "give at least one model file".into(),
            ));
        }
        let models = raw
            .models
            .get_ref()
            .iter()
            .map(|m| {
                let pos = m.span().start;
                let m = m.get_ref();
                let file = expand(&m.file, env).map_err(|e| err(pos, "models", e))?;
                let path = base_dir.join(&file);
                Ok(ModelFile {
                    quantization: m
                        .quantization
                        .clone()
                        .or_else(|| crate::discover::kinds::quantization_in_name(&file)),
                    from: if path.exists() {
                        path.display().to_string()
                    } else {
                        file.clone()
                    },
                    path,
                })
            })
            .collect::<Result<Vec<_>, SweepError>>()?;
        let words = |v: &Option<Spanned<Vec<String>>>,
                     field: &str,
                     allowed: &[&str],
                     default: &str|
         -> Result<Vec<String>, SweepError> {
            let Some(v) = v else {
                return Ok(vec![default.to_string()]);
            };
            if v.get_ref().is_empty() {
                return Err(err(v.span().start, field, "give at least one value".into()));
            }
            for w in v.get_ref() {
                if !allowed.contains(&w.as_str()) {
                    return Err(err(
                        v.span().start,
                        field,
                        format!("'{w}' is not one of {}", allowed.join(", ")),
                    ));
                }
            }
            Ok(v.get_ref().clone())
        };
        let counts = |v: &Option<Spanned<Vec<i64>>>,
                      field: &str,
                      min: i64,
                      max: i64,
                      default: u32|
         -> Result<Vec<u32>, SweepError> {
            let Some(v) = v else {
                return Ok(vec![default]);
            };
            if v.get_ref().is_empty() {
                return Err(err(v.span().start, field, "give at least one value".into()));
            }
            v.get_ref()
                .iter()
                .map(|n| {
                    if (min..=max).contains(n) {
                        Ok(*n as u32)
                    } else {
                        Err(err(
                            v.span().start,
                            field,
                            format!("{n} is not from {min} to {max}"),
                        ))
                    }
                })
                .collect()
        };
        let temperatures = match &raw.temperatures {
            None => Vec::new(),
            Some(t) => {
                for v in t.get_ref() {
                    if !(0.0..=2.0).contains(v) {
                        return Err(err(
                            t.span().start,
                            "temperatures",
                            format!("{v} is not from 0 to 2"),
                        ));
                    }
                }
                t.get_ref().clone()
            }
        };
        let start_timeout = match &raw.start_timeout {
            None => Duration::from_secs(300),
            Some(s) => llmpulse_core::schedule::parse_duration(s.get_ref())
                .map_err(|m| err(s.span().start, "start_timeout", m))?,
        };
        // Each launcher's axes, and a clear word for another launcher's.
        let is_vllm = matches!(launcher, Launcher::Vllm { .. });
        let given = |v: bool, pos: Option<usize>, field: &str, whose: &str| match (v, pos) {
            (true, Some(p)) => Err(err(p, field, format!("is {whose}"))),
            _ => Ok(()),
        };
        let span = |s: Option<std::ops::Range<usize>>| s.map(|r| r.start);
        let llama_only = "llama.cpp's; vLLM takes kv_cache_dtype, max_model_len and its own axes";
        given(
            is_vllm,
            span(raw.flash_attn.as_ref().map(|v| v.span())),
            "flash_attn",
            llama_only,
        )?;
        given(
            is_vllm,
            span(raw.kv_cache_type.as_ref().map(|v| v.span())),
            "kv_cache_type",
            llama_only,
        )?;
        given(
            is_vllm,
            span(raw.gpu_layers.as_ref().map(|v| v.span())),
            "gpu_layers",
            llama_only,
        )?;
        let is_lms = matches!(launcher, Launcher::LmStudio { .. });
        let lms_cannot =
            "not set through LM Studio's CLI (lms load takes the context length and --gpu)";
        given(
            is_lms,
            span(raw.flash_attn.as_ref().map(|v| v.span())),
            "flash_attn",
            lms_cannot,
        )?;
        given(
            is_lms,
            span(raw.kv_cache_type.as_ref().map(|v| v.span())),
            "kv_cache_type",
            lms_cannot,
        )?;
        given(
            is_lms,
            span(raw.gpu_layers.as_ref().map(|v| v.span())),
            "gpu_layers",
            lms_cannot,
        )?;
        given(
            !is_lms,
            span(raw.gpu.as_ref().map(|v| v.span())),
            "gpu",
            "LM Studio's (launcher = \"lmstudio\"); llama.cpp and Ollama take gpu_layers",
        )?;
        let gpu = match &raw.gpu {
            None if is_lms => vec!["max".to_string()],
            None => Vec::new(),
            Some(g) => {
                if g.get_ref().is_empty() || g.get_ref().iter().any(|v| !lmstudio::is_gpu_value(v))
                {
                    return Err(err(
                        g.span().start,
                        "gpu",
                        "give max, off or a share from 0 to 1".into(),
                    ));
                }
                g.get_ref().clone()
            }
        };
        let vllm_only = "vLLM's: set launcher = \"vllm\"";
        for (field, pos) in [
            (
                "max_model_len",
                span(raw.max_model_len.as_ref().map(|v| v.span())),
            ),
            (
                "kv_cache_dtype",
                span(raw.kv_cache_dtype.as_ref().map(|v| v.span())),
            ),
            (
                "max_num_seqs",
                span(raw.max_num_seqs.as_ref().map(|v| v.span())),
            ),
            ("dtype", span(raw.dtype.as_ref().map(|v| v.span()))),
            (
                "enforce_eager",
                span(raw.enforce_eager.as_ref().map(|v| v.span())),
            ),
            (
                "gpu_memory_utilization",
                span(raw.gpu_memory_utilization.as_ref().map(|v| v.span())),
            ),
        ] {
            given(!is_vllm, pos, field, vllm_only)?;
        }
        if matches!(launcher, Launcher::Ollama { .. })
            && let Some(kv) = &raw.kv_cache_type
            && let Some(bad) = kv
                .get_ref()
                .iter()
                .find(|k| !OLLAMA_KV_TYPES.contains(&k.as_str()))
        {
            return Err(err(
                kv.span().start,
                "kv_cache_type",
                format!("'{bad}': Ollama takes {}", OLLAMA_KV_TYPES.join(", ")),
            ));
        }
        let (flash_attn, kv_cache_type, ctx_size, gpu_layers, vllm) = if is_vllm {
            if raw.ctx_size.is_some() && raw.max_model_len.is_some() {
                let pos = span(raw.ctx_size.as_ref().map(|v| v.span())).unwrap_or(at);
                return Err(err(
                    pos,
                    "ctx_size",
                    "give max_model_len or ctx_size, not both".into(),
                ));
            }
            let ctx = raw
                .max_model_len
                .as_ref()
                .or(raw.ctx_size.as_ref())
                .cloned();
            let shares = match &raw.gpu_memory_utilization {
                None => vec![vllm::DEFAULT_GPU_MEMORY_UTILIZATION],
                Some(g) => {
                    if g.get_ref().is_empty()
                        || g.get_ref().iter().any(|v| !(*v > 0.0 && *v <= 1.0))
                    {
                        return Err(err(
                            g.span().start,
                            "gpu_memory_utilization",
                            "give shares above 0 and at most 1".into(),
                        ));
                    }
                    g.get_ref().clone()
                }
            };
            let eager = match &raw.enforce_eager {
                None => vec![false],
                Some(e) if e.get_ref().is_empty() => {
                    return Err(err(
                        e.span().start,
                        "enforce_eager",
                        "give at least one value".into(),
                    ));
                }
                Some(e) => e.get_ref().clone(),
            };
            (
                vec!["auto".to_string()],
                words(
                    &raw.kv_cache_dtype,
                    "kv_cache_dtype",
                    &vllm::KV_DTYPES,
                    "auto",
                )?,
                counts(&ctx, "max_model_len", 128, 1 << 22, 4096)?,
                vec![0],
                Some(vllm::Axes {
                    max_num_seqs: counts(
                        &raw.max_num_seqs,
                        "max_num_seqs",
                        1,
                        65_536,
                        vllm::DEFAULT_MAX_NUM_SEQS,
                    )?,
                    dtype: words(&raw.dtype, "dtype", &vllm::DTYPES, "auto")?,
                    enforce_eager: eager,
                    gpu_memory_utilization: shares,
                }),
            )
        } else {
            (
                words(&raw.flash_attn, "flash_attn", &FLASH, "auto")?,
                words(&raw.kv_cache_type, "kv_cache_type", &KV_TYPES, "f16")?,
                counts(&raw.ctx_size, "ctx_size", 128, 1 << 22, 4096)?,
                counts(&raw.gpu_layers, "gpu_layers", 0, 10_000, 0)?,
                None,
            )
        };
        let env = raw
            .env
            .iter()
            .map(|(k, v)| Ok((k.clone(), fill(v, "env")?)))
            .collect::<Result<Vec<_>, SweepError>>()?;
        Ok(Sweep {
            name,
            launcher,
            models,
            env,
            flash_attn,
            kv_cache_type,
            ctx_size,
            gpu_layers,
            temperatures,
            args: raw.args,
            start_timeout,
            vllm,
            gpu,
        })
    }
}

/// `${VAR}` (or `${VAR:-default}`) from `env`; an unset variable without a default is an
/// error that names it.
fn expand(s: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let Some(j) = rest[i..].find('}') else {
            return Err(format!("unclosed ${{ in '{s}'"));
        };
        let inner = &rest[i + 2..i + j];
        let (var, default) = match inner.split_once(":-") {
            Some((v, d)) => (v, Some(d)),
            None => (inner, None),
        };
        let value = env(var)
            .filter(|v| !v.is_empty())
            .or_else(|| default.map(String::from))
            .ok_or_else(|| format!("${{{var}}} is not set"))?;
        out.push_str(&value);
        rest = &rest[i + j + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Every point of the matrix, in order (model files outermost, so a model's points share the
/// page cache), and the points that cannot run, with why.
pub fn plan(s: &Sweep) -> (Vec<Point>, Vec<Skipped>) {
    let mut points = Vec::new();
    let mut skipped = Vec::new();
    for model in &s.models {
        for fa in &s.flash_attn {
            for kv in &s.kv_cache_type {
                for ctx in &s.ctx_size {
                    for ngl in &s.gpu_layers {
                        let settings: Vec<Option<vllm::Settings>> = match &s.vllm {
                            Some(axes) => axes.settings().into_iter().map(Some).collect(),
                            None => vec![None],
                        };
                        let offloads: Vec<Option<String>> = if s.gpu.is_empty() {
                            vec![None]
                        } else {
                            s.gpu.iter().cloned().map(Some).collect()
                        };
                        for v in settings {
                            for gpu in &offloads {
                                let p = Point {
                                    model: model.clone(),
                                    flash_attn: fa.clone(),
                                    kv_cache_type: kv.clone(),
                                    ctx_size: *ctx,
                                    gpu_layers: *ngl,
                                    vllm: v.clone(),
                                    gpu: gpu.clone(),
                                };
                                match why_not(s, &p) {
                                    Some(why) => skipped.push(Skipped { point: p, why }),
                                    None => points.push(p),
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    (points, skipped)
}

/// Why a point cannot run, known before anything starts.
fn why_not(s: &Sweep, p: &Point) -> Option<String> {
    let quantized_cache = !matches!(p.kv_cache_type.as_str(), "f32" | "f16" | "bf16");
    let server = match s.launcher {
        Launcher::LlamaCpp { .. } => "llama.cpp",
        // Ollama quantizes its cache only with flash attention on.
        Launcher::Ollama { .. } => "Ollama",
        _ => return None,
    };
    if quantized_cache && p.flash_attn == "off" {
        return Some(format!(
            "{server} needs flash attention for a quantized V cache ({}): use flash_attn on or auto",
            p.kv_cache_type
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Sweep, SweepError> {
        Sweep::parse(text, "sweep.toml", Path::new("/m"), &|k| {
            (k == "BIN").then(|| "/opt/llama-server".into())
        })
    }

    #[test]
    fn a_matrix_with_its_impossible_points_explained() {
        let s = parse(
            "suite = \"x\"\n[sweep]\nname = \"smol\"\nbinary = \"${BIN}\"\n\
             models = [{ file = \"a.Q4_1.gguf\" }, { file = \"b.gguf\", quantization = \"Q8_0\" }]\n\
             flash_attn = [\"on\", \"off\"]\nkv_cache_type = [\"f16\", \"q8_0\"]\ntemperatures = [0.1, 0.7]\n",
        )
        .unwrap();
        assert_eq!(
            s.launcher,
            Launcher::LlamaCpp {
                binary: "/opt/llama-server".into()
            }
        );
        assert_eq!(s.models[0].quantization.as_deref(), Some("Q4_1"));
        assert_eq!(s.models[1].path, Path::new("/m/b.gguf"));
        let (points, skipped) = plan(&s);
        // 2 models × 2 flash × 2 KV = 8, less the two with a quantized cache and no flash attention.
        assert_eq!(points.len(), 6);
        assert_eq!(skipped.len(), 2);
        assert!(
            skipped
                .iter()
                .all(|k| k.point.flash_attn == "off" && k.point.kv_cache_type == "q8_0")
        );
        assert!(
            skipped[0].why.contains("flash attention"),
            "{}",
            skipped[0].why
        );
        assert_eq!(points[0].label("smol"), "smol-q4_1-faon-kvf16-c4096");
    }

    #[test]
    fn errors_name_line_and_field() {
        let e = parse("[sweep]\nmodels = [{ file = \"a.gguf\" }]\nflash_attn = [\"yes\"]\n")
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "sweep.toml:3: sweep.flash_attn: 'yes' is not one of on, off, auto"
        );
        let e = parse("[sweep]\nmodels = []\n").unwrap_err();
        assert!(
            e.to_string().starts_with("sweep.toml:2: sweep.models:"),
            "{e}"
        );
        let e = parse("[sweep]\nbinary = \"${NOPE}\"\nmodels = [{ file = \"a\" }]\n").unwrap_err();
        assert!(e.to_string().contains("${NOPE} is not set"), "{e}");
        let e = parse(
            "[sweep]\nlauncher = \"command\"\ncommand = \"srv\"\nmodels = [{ file = \"a\" }]\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("{port}"), "{e}");
        let s = parse("[sweep]\nbinary = \"${NOPE:-llama-server}\"\nmodels = [{ file = \"${M:-models}/a.gguf\" }]\n").unwrap();
        assert_eq!(
            s.launcher,
            Launcher::LlamaCpp {
                binary: "llama-server".into()
            }
        );
        assert_eq!(s.models[0].path, Path::new("/m/models/a.gguf"));
        let e = parse("suite = \"x\"\n").unwrap_err();
        assert!(e.to_string().contains("no [sweep] table"), "{e}");
    }

    #[test]
    fn a_vllm_sweep_has_its_own_axes_and_refuses_llama_cpps() {
        let s = parse(
            "[sweep]\nname = \"v\"\nlauncher = \"vllm\"\nbinary = \"/venv/bin/python\"\n\
             models = [{ file = \"SmolLM2-hf\" }]\nmax_model_len = [2048]\n\
             max_num_seqs = [1, 4]\nenforce_eager = [true]\nkv_cache_dtype = [\"auto\", \"fp8\"]\n",
        )
        .unwrap();
        assert_eq!(
            s.launcher,
            Launcher::Vllm {
                python: "/venv/bin/python".into()
            }
        );
        let (points, skipped) = plan(&s);
        assert!(skipped.is_empty());
        let labels: Vec<String> = points.iter().map(|p| p.label("v")).collect();
        assert_eq!(
            labels,
            [
                "v-smollm2-hf-kvauto-c2048-seqs1-eager",
                "v-smollm2-hf-kvauto-c2048-seqs4-eager",
                "v-smollm2-hf-kvfp8-c2048-seqs1-eager",
                "v-smollm2-hf-kvfp8-c2048-seqs4-eager",
            ]
        );
        let e = parse(
            "[sweep]\nlauncher = \"vllm\"\nmodels = [{ file = \"m\" }]\nflash_attn = [\"on\"]\n",
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("sweep.toml:4: sweep.flash_attn: is llama.cpp's"),
            "{e}"
        );
        let e = parse("[sweep]\nmodels = [{ file = \"m\" }]\nmax_num_seqs = [4]\n").unwrap_err();
        assert!(
            e.to_string()
                .contains("sweep.max_num_seqs: is vLLM's: set launcher = \"vllm\""),
            "{e}"
        );
        let e = parse(
            "[sweep]\nlauncher = \"vllm\"\nmodels = [{ file = \"m\" }]\nkv_cache_dtype = [\"q8_0\"]\n",
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("'q8_0' is not one of auto, fp8"),
            "{e}"
        );
        let e = parse(
            "[sweep]\nlauncher = \"vllm\"\nmodels = [{ file = \"m\" }]\ngpu_memory_utilization = [1.5]\n",
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("sweep.gpu_memory_utilization"),
            "{e}"
        );
    }

    #[test]
    fn an_ollama_sweep_takes_ollamas_cache_types_and_model_names() {
        let s = parse(
            "[sweep]\nlauncher = \"ollama\"\nmodels = [{ file = \"qwen2.5:7b\" }]\n\
             flash_attn = [\"on\", \"off\"]\nkv_cache_type = [\"f16\", \"q4_0\"]\n",
        )
        .unwrap();
        assert_eq!(s.launcher.server(), "ollama");
        // Not a file here: the name goes to FROM as given.
        assert_eq!(s.models[0].from, "qwen2.5:7b");
        let (points, skipped) = plan(&s);
        assert_eq!((points.len(), skipped.len()), (3, 1));
        assert!(
            skipped[0].why.starts_with("Ollama needs flash attention"),
            "{}",
            skipped[0].why
        );
        let e = parse(
            "[sweep]\nlauncher = \"ollama\"\nmodels = [{ file = \"m\" }]\nkv_cache_type = [\"q5_1\"]\n",
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("'q5_1': Ollama takes f16, q8_0, q4_0"),
            "{e}"
        );
    }
}
