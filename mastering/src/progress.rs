//! Progress reporting and the stages of the chain.

use serde::Serialize;

/// A stage of mastering, in the order the chain runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Decode,
    Analysis,
    Equalizer,
    Dynamics,
    Limiter,
    LoudnessCorrection,
    Encode,
}

impl Stage {
    /// Text shown to the user while the stage runs.
    pub fn message(self) -> &'static str {
        match self {
            Stage::Decode => "Decoding audio",
            Stage::Analysis => "Analysing loudness and tone",
            Stage::Equalizer => "Balancing tone",
            Stage::Dynamics => "Shaping dynamics",
            Stage::Limiter => "Limiting true peaks",
            Stage::LoudnessCorrection => "Matching the loudness target",
            Stage::Encode => "Encoding the master",
        }
    }
}

/// One progress report: the stage and the overall fraction done, 0.0 ..= 1.0.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Progress {
    pub stage: Stage,
    pub fraction: f32,
}
