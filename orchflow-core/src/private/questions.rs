//! Questions: human questions checked when a flow is built.

use super::*;

/// A flow's step as a human question: its name and the step's type (one question used twice is
/// one question), or `None` for other steps.
#[inline]
pub fn question<St: StepDef>(step: &St) -> Option<(&'static str, std::any::TypeId)> {
    step.question()
        .map(|name| (name, std::any::TypeId::of::<St>()))
}

/// Checks the questions of a flow when `flow!` builds it: two different questions with one
/// name are an error that every run reports (see [`invalid`]).
pub fn questions(
    all: &[Option<(&'static str, std::any::TypeId)>],
) -> Option<crate::human::DuplicateQuestion> {
    let all: Vec<_> = all.iter().flatten().collect();
    all.iter().enumerate().find_map(|(j, (name, ty))| {
        all[..j]
            .iter()
            .any(|(n, t)| n == name && t != ty)
            .then_some(crate::human::DuplicateQuestion { name })
    })
}

/// The failure of every run of a flow that `flow!` found invalid when it was built.
#[cold]
pub fn invalid(e: crate::human::DuplicateQuestion) -> Halt {
    Halt::new(crate::error::FlowError::Step {
        step: e.name.into(),
        attempts: 0,
        source: crate::error::StepError::Failed(Box::new(e)),
    })
}
