//! LM Studio as a sweep launcher, through its documented CLI (`lms`): `lms server start --port
//! P`, then `lms load MODEL --context-length N --gpu G --identifier NAME -y`; at the point's end
//! `lms unload NAME` and `lms server stop`. The server is LM Studio's own (its app or headless
//! daemon), not a child of the agent: the point ends by asking it to stop.

use std::path::Path;
use std::process::Command;

use super::Point;

/// `--gpu` values besides a share from 0 to 1.
pub const GPU_WORDS: [&str; 2] = ["max", "off"];

/// Whether `v` is an `lms load --gpu` value.
pub fn is_gpu_value(v: &str) -> bool {
    GPU_WORDS.contains(&v) || v.parse::<f64>().is_ok_and(|x| (0.0..=1.0).contains(&x))
}

pub fn server_start(binary: &Path, port: u16) -> Command {
    let mut c = Command::new(binary);
    c.args(["server", "start", "--port", &port.to_string()]);
    c
}

/// Loads the point's model under the template target's model name.
pub fn load(binary: &Path, point: &Point, name: &str) -> Command {
    let mut c = Command::new(binary);
    c.args(["load", &point.model.from])
        .args(["--context-length", &point.ctx_size.to_string()])
        .args(["--gpu", point.gpu.as_deref().unwrap_or("max")])
        .args(["--identifier", name, "-y"]);
    c
}

/// What ends a point: its model unloaded, the server stopped.
pub fn teardown(binary: &Path, name: &str) -> Vec<Command> {
    let mut unload = Command::new(binary);
    unload.args(["unload", name]);
    let mut stop = Command::new(binary);
    stop.args(["server", "stop"]);
    vec![unload, stop]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::ModelFile;

    fn args(c: &Command) -> String {
        c.get_args()
            .map(|a| a.to_string_lossy().to_string())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn the_point_goes_into_lms_arguments() {
        let point = Point {
            model: ModelFile {
                path: "/m/qwen2.5-7b-instruct".into(),
                from: "qwen2.5-7b-instruct".into(),
                quantization: None,
            },
            flash_attn: "auto".into(),
            kv_cache_type: "f16".into(),
            ctx_size: 8192,
            gpu_layers: 0,
            vllm: None,
            gpu: Some("0.5".into()),
        };
        let lms = Path::new("lms");
        assert_eq!(args(&server_start(lms, 1234)), "server start --port 1234");
        assert_eq!(
            args(&load(lms, &point, "smol")),
            "load qwen2.5-7b-instruct --context-length 8192 --gpu 0.5 --identifier smol -y"
        );
        let t: Vec<String> = teardown(lms, "smol").iter().map(args).collect();
        assert_eq!(t, ["unload smol", "server stop"]);
        assert!(
            is_gpu_value("max")
                && is_gpu_value("0.25")
                && !is_gpu_value("2")
                && !is_gpu_value("all")
        );
    }
}
