//! `Agent` over `ScriptedLlm`: prompts, typed replies, the corrective retry, degrading to a
//! default, and the scripted client itself. No network.

use futures_util::StreamExt;
use orchflow_agent::agent::{Agent, AgentConfig, AgentError, Structured};
use orchflow_agent::llm::collect_stream;
use orchflow_agent::testing::ScriptedLlm;
use orchflow_agent::{ChatRequest, LlmClient, LlmError, Message, Role, Usage};
use schemars::JsonSchema;
use serde::Deserialize;
use std::sync::Arc;

#[derive(Debug, Deserialize, JsonSchema, PartialEq, Default, Clone)]
struct Decision {
    thought: String,
    action: String,
    action_input: String,
}

fn decision(action: &str, input: &str) -> Decision {
    Decision {
        thought: "t".into(),
        action: action.into(),
        action_input: input.into(),
    }
}

const GOOD: &str = r#"{"thought": "t", "action": "search", "action_input": "rust"}"#;

fn planner(llm: &Arc<ScriptedLlm>) -> Agent {
    Agent::new(
        "planner",
        "You are the planner.",
        AgentConfig::new("test-model")
            .with_system_prompt("Follow the format.")
            .with_temperature(0.3)
            .with_max_tokens(256)
            .with_think(false),
        llm.clone(),
    )
}

fn fixed_usage() -> Usage {
    Usage {
        prompt_tokens: 10,
        completion_tokens: 4,
    }
}

#[tokio::test]
async fn run_sends_system_prompt_role_and_options() {
    let llm = Arc::new(ScriptedLlm::new(["Hello there"]).with_usage(fixed_usage()));
    let reply = planner(&llm).run("Say hello").await.unwrap();
    assert_eq!(reply.text, "Hello there");
    assert_eq!(reply.usage, fixed_usage());
    assert_eq!(reply.model, "test-model");

    let requests = llm.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r.model, "test-model");
    assert_eq!(r.temperature, Some(0.3));
    assert_eq!(r.max_tokens, Some(256));
    assert_eq!(r.think, Some(false));
    assert_eq!(r.schema, None);
    assert_eq!(
        r.messages,
        vec![
            Message::system("Follow the format.\n\nYou are the planner."),
            Message::user("Say hello"),
        ]
    );
}

#[tokio::test]
async fn run_without_system_prompt_or_role_sends_only_the_prompt() {
    let llm = Arc::new(ScriptedLlm::new(["ok"]));
    let agent = Agent::new("bare", "  ", AgentConfig::default(), llm.clone());
    agent.run("hi").await.unwrap();
    assert_eq!(llm.requests()[0].messages, vec![Message::user("hi")]);

    let role_only = Agent::new("r", "You count.", AgentConfig::default(), llm.clone());
    assert_eq!(role_only.system_prompt(), "You count.");
}

#[tokio::test]
async fn run_structured_sends_the_schema_and_parses() {
    let llm = Arc::new(ScriptedLlm::new([GOOD]).with_usage(fixed_usage()));
    let result: Structured<Decision> = planner(&llm).run_structured("next?").await.unwrap();
    assert_eq!(result.value, decision("search", "rust"));
    assert_eq!(result.raw, GOOD);
    assert_eq!(result.attempts, 1);
    assert!(!result.degraded);
    assert_eq!(result.error, None);
    assert_eq!(result.usage, fixed_usage());

    let request = &llm.requests()[0];
    let schema = serde_json::Value::from(schemars::schema_for!(Decision));
    assert_eq!(request.schema.as_ref(), Some(&schema));
    let system = &request.messages[0];
    assert_eq!(system.role, Role::System);
    assert!(
        system
            .content
            .starts_with("Follow the format.\n\nYou are the planner.")
    );
    assert!(
        system.content.contains("\"action_input\""),
        "the schema is quoted"
    );
    assert_eq!(request.messages[1], Message::user("next?"));
}

#[tokio::test]
async fn run_structured_accepts_fences_prose_and_thinking() {
    let replies = [
        format!("```json\n{GOOD}\n```"),
        format!("Here is my decision:\n\n{GOOD}\n\nLet me know {{if}} you need more."),
        format!("<think>maybe {{\"action\": 1}}</think>\n{GOOD}"),
        "{\"thought\": \"braces } in { strings\", \"action\": \"code\", \"action_input\": \"print(\\\"}\\\")\"}".to_string(),
    ];
    let llm = Arc::new(ScriptedLlm::new(replies));
    let agent = planner(&llm);
    for _ in 0..3 {
        let r = agent.run_structured::<Decision>("next?").await.unwrap();
        assert_eq!(r.value, decision("search", "rust"));
        assert_eq!(r.attempts, 1);
    }
    let r = agent.run_structured::<Decision>("next?").await.unwrap();
    assert_eq!(r.value.thought, "braces } in { strings");
    assert_eq!(r.value.action_input, "print(\"}\")");
    assert_eq!(llm.calls(), 4, "no retries were needed");
}

#[tokio::test]
async fn unparsable_reply_is_retried_once_with_a_correction() {
    let llm = Arc::new(
        ScriptedLlm::new([r#"{"thought": "t", "action": "search"}"#, GOOD])
            .with_usage(fixed_usage()),
    );
    let result = planner(&llm)
        .run_structured::<Decision>("next?")
        .await
        .unwrap();
    assert_eq!(result.value, decision("search", "rust"));
    assert_eq!(result.attempts, 2);
    assert_eq!(result.raw, GOOD);
    assert!(!result.degraded);
    assert_eq!(
        result.usage,
        Usage {
            prompt_tokens: 20,
            completion_tokens: 8
        },
        "usage sums both attempts"
    );

    let requests = llm.requests();
    assert_eq!(requests.len(), 2);
    let (first, second) = (&requests[0], &requests[1]);
    assert_eq!(second.messages.len(), first.messages.len() + 2);
    assert_eq!(second.messages[..first.messages.len()], first.messages[..]);
    assert_eq!(
        second.messages[2],
        Message::assistant(r#"{"thought": "t", "action": "search"}"#)
    );
    let correction = &second.messages[3];
    assert_eq!(correction.role, Role::User);
    assert!(
        correction.content.contains("missing field `action_input`"),
        "{}",
        correction.content
    );
    assert_eq!(second.schema, first.schema);
    assert_eq!(second.model, first.model);
}

#[tokio::test]
async fn two_unparsable_replies_give_a_typed_error() {
    let llm = Arc::new(
        ScriptedLlm::new(["I would search for rust.", "action: search"]).with_usage(fixed_usage()),
    );
    let err = planner(&llm)
        .run_structured::<Decision>("next?")
        .await
        .unwrap_err();
    match &err {
        AgentError::NotJson {
            expected,
            raw,
            error,
            attempts,
            usage,
        } => {
            assert_eq!(expected, "Decision");
            assert_eq!(raw, "action: search", "the last reply");
            assert_eq!(error, "the reply contains no JSON object");
            assert_eq!(*attempts, 2);
            assert_eq!(usage.total(), 28);
        }
        other => panic!("expected NotJson, got {other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.contains("Decision") && message.contains("action: search"),
        "{message}"
    );
    assert_eq!(llm.calls(), 2, "exactly one retry");
}

/// Text that is not JSON and valid JSON of the wrong shape are different errors; the last
/// reply decides which. Both keep the parse error and a short excerpt of the reply in their
/// message, and both degrade in `run_structured_or_default`, saying which it was.
#[tokio::test]
async fn not_json_and_wrong_shape_are_different_errors() {
    use orchflow_agent::agent::{ReplyError, parse_json_reply};

    // Not JSON, twice.
    let long_prose = format!("I would search for rust. {}", "Really. ".repeat(100));
    let llm = Arc::new(ScriptedLlm::new(["no idea", long_prose.as_str()]));
    let err = planner(&llm)
        .run_structured::<Decision>("next?")
        .await
        .unwrap_err();
    let AgentError::NotJson {
        expected,
        raw,
        error,
        attempts,
        ..
    } = &err
    else {
        panic!("expected NotJson, got {err:?}");
    };
    assert_eq!(expected, "Decision");
    assert_eq!(raw, &long_prose, "the last reply, in full");
    assert_eq!(error, "the reply contains no JSON object");
    assert_eq!(*attempts, 2);
    let message = err.to_string();
    assert!(message.contains("not JSON"), "{message}");
    assert!(
        message.contains("the reply contains no JSON object"),
        "{message}"
    );
    assert!(message.contains("I would search for rust."), "{message}");
    assert!(message.len() < 600, "the reply is shortened: {message}");

    // A syntax error inside what looks like JSON is not JSON either.
    let llm = Arc::new(ScriptedLlm::new([
        "{\"thought\": \"t\", \"action\": }",
        "```json\n{\"thought\": \"t\",\n```",
    ]));
    let err = planner(&llm)
        .run_structured::<Decision>("next?")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, AgentError::NotJson { error, .. } if error.contains("line")),
        "{err:?}"
    );

    // Valid JSON of the wrong shape, twice.
    let llm = Arc::new(ScriptedLlm::new([
        "[1, 2]",
        r#"Here: {"thought": "t", "action": "search"}"#,
    ]));
    let err = planner(&llm)
        .run_structured::<Decision>("next?")
        .await
        .unwrap_err();
    let AgentError::WrongShape {
        expected,
        raw,
        error,
        attempts,
        ..
    } = &err
    else {
        panic!("expected WrongShape, got {err:?}");
    };
    assert_eq!(expected, "Decision");
    assert_eq!(raw, r#"Here: {"thought": "t", "action": "search"}"#);
    assert!(error.contains("missing field `action_input`"), "{error}");
    assert_eq!(*attempts, 2);
    let message = err.to_string();
    assert!(message.contains("not a valid Decision"), "{message}");
    assert!(
        message.contains("missing field `action_input`"),
        "{message}"
    );
    assert!(message.contains(r#"{"thought": "t""#), "{message}");

    // The last reply decides.
    let llm = Arc::new(ScriptedLlm::new([
        "{\"thought\": 1}",
        "no json",
        "nope",
        "42",
    ]));
    let agent = planner(&llm);
    let err = agent.run_structured::<Decision>("next?").await.unwrap_err();
    assert!(matches!(err, AgentError::NotJson { .. }), "{err:?}");
    let err = agent.run_structured::<Decision>("next?").await.unwrap_err();
    assert!(matches!(err, AgentError::WrongShape { .. }), "{err:?}");

    // Degrading says which it was.
    let llm = Arc::new(ScriptedLlm::new(["x", "y", "[]", "{}"]));
    let agent = planner(&llm);
    let not_json = agent
        .run_structured_or_default::<Decision>("next?")
        .await
        .unwrap();
    assert!(not_json.degraded);
    assert!(
        matches!(&not_json.error, Some(ReplyError::NotJson { .. })),
        "{:?}",
        not_json.error
    );
    let wrong_shape = agent
        .run_structured_or_default::<Decision>("next?")
        .await
        .unwrap();
    assert!(wrong_shape.degraded);
    assert_eq!(wrong_shape.value, Decision::default());
    match &wrong_shape.error {
        Some(e @ ReplyError::WrongShape { .. }) => {
            assert!(e.to_string().contains("missing field"), "{e}")
        }
        other => panic!("expected WrongShape, got {other:?}"),
    }

    // The parser itself.
    assert!(matches!(
        parse_json_reply::<Decision>(""),
        Err(ReplyError::NotJson { .. })
    ));
    assert!(matches!(
        parse_json_reply::<Decision>("true"),
        Err(ReplyError::WrongShape { .. })
    ));
    assert!(matches!(
        parse_json_reply::<Decision>("the answer is {unquoted: 1}"),
        Err(ReplyError::NotJson { .. })
    ));
}

#[tokio::test]
async fn or_default_and_or_else_degrade() {
    let llm = Arc::new(ScriptedLlm::new(["nope", "still nope", GOOD, "x", "y"]));
    let agent = planner(&llm);

    let d = agent
        .run_structured_or_default::<Decision>("next?")
        .await
        .unwrap();
    assert!(d.degraded);
    assert_eq!(d.value, Decision::default());
    assert_eq!(d.raw, "still nope");
    assert_eq!(d.attempts, 2);
    assert_eq!(
        d.error.as_ref().map(ToString::to_string).as_deref(),
        Some("the reply contains no JSON object")
    );

    let ok = agent
        .run_structured_or_default::<Decision>("next?")
        .await
        .unwrap();
    assert!(!ok.degraded);
    assert_eq!(ok.value, decision("search", "rust"));

    let fallback = agent
        .run_structured_or_else("next?", || decision("answer", "unknown"))
        .await
        .unwrap();
    assert!(fallback.degraded);
    assert_eq!(fallback.value, decision("answer", "unknown"));
    assert_eq!(llm.calls(), 5);
}

#[tokio::test]
async fn model_errors_are_not_degraded() {
    let llm = Arc::new(ScriptedLlm::new(Vec::<String>::new()));
    let agent = planner(&llm);
    let err = agent.run("hi").await.unwrap_err();
    assert!(
        matches!(err, AgentError::Llm(LlmError::ScriptExhausted { call: 1 })),
        "{err:?}"
    );
    let err = agent
        .run_structured_or_default::<Decision>("hi")
        .await
        .unwrap_err();
    assert!(matches!(err, AgentError::Llm(_)), "{err:?}");

    // A failure on the corrective retry is a model error too.
    let llm = Arc::new(ScriptedLlm::from_results([
        Ok("not json".to_string()),
        Err(LlmError::Stream {
            reason: "cut".into(),
        }),
    ]));
    let err = planner(&llm)
        .run_structured::<Decision>("hi")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, AgentError::Llm(LlmError::Stream { reason }) if reason == "cut"),
        "{err:?}"
    );
    assert!(std::error::Error::source(&err).is_some());
}

#[tokio::test]
async fn non_object_types_work_too() {
    let llm = Arc::new(ScriptedLlm::new(["[1, 2, 3]", "The count is 7", "7"]));
    let agent = planner(&llm);
    let v = agent.run_structured::<Vec<u32>>("list").await.unwrap();
    assert_eq!(v.value, vec![1, 2, 3]);
    let n = agent.run_structured::<u32>("count").await.unwrap();
    assert_eq!((n.value, n.attempts), (7, 2));
}

#[test]
fn agent_futures_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let agent = planner(&Arc::new(ScriptedLlm::new([GOOD])));
    assert_send(&agent.run("x"));
    assert_send(&agent.run_structured::<Decision>("x"));
    assert_send(&agent.run_structured_or_default::<Decision>("x"));
}

#[test]
fn agent_config_defaults_builders_and_serde() {
    let d = AgentConfig::default();
    assert_eq!(d.think, Some(false));
    assert!(d.system_prompt.is_empty());
    let c = AgentConfig::new("m")
        .with_model("m2")
        .with_temperature(1.0)
        .with_max_tokens(9)
        .with_system_prompt("s")
        .with_think(true);
    assert_eq!(
        (
            c.model.as_str(),
            c.temperature,
            c.max_tokens,
            c.system_prompt.as_str(),
            c.think
        ),
        ("m2", Some(1.0), Some(9), "s", Some(true))
    );
    let json = serde_json::to_value(&c).unwrap();
    assert_eq!(serde_json::from_value::<AgentConfig>(json).unwrap(), c);
    let partial: AgentConfig = serde_json::from_str(r#"{"model": "x", "think": null}"#).unwrap();
    assert_eq!(partial.model, "x");
    assert_eq!(partial.think, None);
    assert_eq!(partial.temperature, d.temperature);
}

// ---------------------------------------------------------------------------------------------
// ScriptedLlm
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn scripted_llm_replies_in_order_then_runs_out() {
    let llm = ScriptedLlm::new(["a", "b c"]);
    let req = ChatRequest::new("m", vec![Message::user("one two three")]);
    let a = llm.chat(&req).await.unwrap();
    assert_eq!(a.content, "a");
    assert_eq!(
        a.usage,
        Usage {
            prompt_tokens: 3,
            completion_tokens: 1
        }
    );
    assert_eq!(a.model, "m");
    assert_eq!(llm.chat(&req).await.unwrap().content, "b c");
    assert_eq!(llm.remaining(), Some(0));
    let err = llm.chat(&req).await.unwrap_err();
    assert!(
        matches!(err, LlmError::ScriptExhausted { call: 3 }),
        "{err:?}"
    );
    assert_eq!(llm.calls(), 3);
    assert_eq!(llm.requests(), vec![req.clone(), req.clone(), req]);

    llm.push_reply("late");
    let req = ChatRequest::new("m", vec![]);
    assert_eq!(llm.chat(&req).await.unwrap().content, "late");
}

#[tokio::test]
async fn scripted_llm_from_fn_sees_each_request() {
    let mut n = 0;
    let llm = Arc::new(ScriptedLlm::from_fn(move |req: &ChatRequest| {
        n += 1;
        if req.schema.is_some() {
            Ok(GOOD.to_string())
        } else if n > 2 {
            Err(LlmError::Config {
                reason: "enough".into(),
            })
        } else {
            Ok(format!(
                "call {n}: {}",
                req.messages.last().unwrap().content
            ))
        }
    }));
    let client: Arc<dyn LlmClient> = llm.clone();
    let req = ChatRequest::new("m", vec![Message::user("hi")]);
    assert_eq!(client.chat(&req).await.unwrap().content, "call 1: hi");
    let structured = planner(&llm).run_structured::<Decision>("x").await.unwrap();
    assert_eq!(structured.value, decision("search", "rust"));
    assert!(client.chat(&req).await.is_err());
    assert_eq!(llm.calls(), 3);
    assert_eq!(llm.remaining(), None);
    assert!(format!("{llm:?}").contains("closure"));
}

#[tokio::test]
async fn scripted_llm_streams_its_reply_as_one_chunk() {
    let llm = ScriptedLlm::new(["whole reply", "again"]).with_usage(fixed_usage());
    let req = ChatRequest::new("m", vec![Message::user("hi")]);
    let chunks: Vec<_> = llm.chat_stream(&req).collect().await;
    assert_eq!(chunks.len(), 1);
    let chunk = chunks[0].as_ref().unwrap();
    assert_eq!(chunk.content, "whole reply");
    assert!(chunk.done);
    assert_eq!(chunk.usage, Some(fixed_usage()));

    // Through `Arc<dyn LlmClient>` and `collect_stream`.
    let client: Arc<dyn LlmClient> = Arc::new(llm);
    let reply = collect_stream(client.chat_stream(&req)).await.unwrap();
    assert_eq!(reply.content, "again");
    let err = collect_stream(client.chat_stream(&req)).await.unwrap_err();
    assert!(matches!(err, LlmError::ScriptExhausted { call: 3 }));
}
