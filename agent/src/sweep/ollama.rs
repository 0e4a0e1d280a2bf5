//! Ollama as a sweep launcher, through its documented CLI: `ollama serve` with the point's
//! server settings in its environment (`OLLAMA_HOST`, `OLLAMA_FLASH_ATTENTION`,
//! `OLLAMA_KV_CACHE_TYPE`), then `ollama create NAME -f Modelfile` with the point's model
//! settings (`FROM`, `PARAMETER num_ctx`, `PARAMETER num_gpu`), so that every call of the point
//! runs on exactly that configuration.

use std::path::Path;
use std::process::Command;

use super::Point;

/// `ollama serve` on `port` with the point's flash attention and KV cache type.
pub fn serve(binary: &Path, point: &Point, port: u16) -> Command {
    let mut c = Command::new(binary);
    c.arg("serve")
        .env("OLLAMA_HOST", format!("127.0.0.1:{port}"))
        .env("OLLAMA_KV_CACHE_TYPE", &point.kv_cache_type);
    match point.flash_attn.as_str() {
        "on" => c.env("OLLAMA_FLASH_ATTENTION", "1"),
        "off" => c.env("OLLAMA_FLASH_ATTENTION", "0"),
        // Ollama's own choice.
        _ => c.env_remove("OLLAMA_FLASH_ATTENTION"),
    };
    c
}

/// The Modelfile of a point: its model (a GGUF file, or a model Ollama has, by name), its
/// context size and, when set, its layers on the GPU.
pub fn modelfile(point: &Point) -> String {
    let mut m = format!(
        "FROM {}\nPARAMETER num_ctx {}\n",
        point.model.from, point.ctx_size
    );
    if point.gpu_layers > 0 {
        m.push_str(&format!("PARAMETER num_gpu {}\n", point.gpu_layers));
    }
    m
}

/// `ollama create NAME -f MODELFILE` against the point's server.
pub fn create(binary: &Path, port: u16, name: &str, modelfile: &Path) -> Command {
    let mut c = Command::new(binary);
    c.args(["create", name, "-f"])
        .arg(modelfile)
        .env("OLLAMA_HOST", format!("127.0.0.1:{port}"));
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::ModelFile;

    fn point(flash: &str, gpu_layers: u32) -> Point {
        Point {
            model: ModelFile {
                path: "/m/qwen2.5:7b".into(),
                from: "qwen2.5:7b".into(),
                quantization: None,
            },
            flash_attn: flash.into(),
            kv_cache_type: "q8_0".into(),
            ctx_size: 8192,
            gpu_layers,
            vllm: None,
            gpu: None,
        }
    }

    fn env(c: &Command, k: &str) -> Option<Option<String>> {
        c.get_envs()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.map(|v| v.to_string_lossy().to_string()))
    }

    #[test]
    fn the_point_goes_into_the_environment_and_the_modelfile() {
        let c = serve(Path::new("ollama"), &point("on", 0), 11500);
        assert_eq!(c.get_args().collect::<Vec<_>>(), ["serve"]);
        assert_eq!(env(&c, "OLLAMA_HOST"), Some(Some("127.0.0.1:11500".into())));
        assert_eq!(env(&c, "OLLAMA_FLASH_ATTENTION"), Some(Some("1".into())));
        assert_eq!(env(&c, "OLLAMA_KV_CACHE_TYPE"), Some(Some("q8_0".into())));
        // auto: the variable is removed, not inherited from the agent's environment.
        let auto = serve(Path::new("ollama"), &point("auto", 0), 11500);
        assert_eq!(env(&auto, "OLLAMA_FLASH_ATTENTION"), Some(None));
        assert_eq!(
            modelfile(&point("on", 0)),
            "FROM qwen2.5:7b\nPARAMETER num_ctx 8192\n"
        );
        assert_eq!(
            modelfile(&point("on", 33)),
            "FROM qwen2.5:7b\nPARAMETER num_ctx 8192\nPARAMETER num_gpu 33\n"
        );
        let c = create(
            Path::new("ollama"),
            11500,
            "smol",
            Path::new("/s/Modelfile"),
        );
        let args: Vec<_> = c
            .get_args()
            .map(|a| a.to_string_lossy().to_string())
            .collect();
        assert_eq!(args, ["create", "smol", "-f", "/s/Modelfile"]);
    }
}
