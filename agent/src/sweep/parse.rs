//! The `[sweep]` table as written, read and checked: every error names the file, the line and
//! the field; each launcher's keys are checked, and another launcher's refused by name.

use std::path::{Path, PathBuf};
use std::time::Duration;

use llmpulse_core::suite::line_col;
use serde::Deserialize;
use toml::Spanned;

use super::{Launcher, ModelFile, Sweep, SweepError, lmstudio, vllm};

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
