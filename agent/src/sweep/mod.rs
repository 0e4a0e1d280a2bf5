//! Server-configuration sweeps (`llmpulse-agent sweep`): a matrix of server launch settings
//! (model file, flash attention, KV cache type, context size, GPU layers) × request settings
//! (temperatures), run point by point on servers the agent starts itself.
//!
//! A sweep file is an llmpulse config with one template target (its provider, model name and
//! request parameters) and a `[sweep]` table of axes. `parse.rs` reads and checks that table;
//! this module holds what it becomes and plans the points ([`plan`]), explaining each one it
//! skips; [`launch`] starts a point's server; [`run`] runs the points; [`vllm`], [`ollama`] and
//! [`lmstudio`] hold what only their launchers have.

pub mod launch;
pub mod lmstudio;
pub mod ollama;
mod parse;
pub mod run;
mod step;
pub mod vllm;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

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
