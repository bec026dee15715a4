//! A scripted model server on 127.0.0.1 speaking the real wire formats: Anthropic Messages
//! (SSE with `tool_use` blocks) and OpenAI Responses (SSE with function calls). Each reply is
//! chosen from the request's content and `tools` (a request that carries a tool result gets
//! the closing text; one that offers an edit tool gets a call to it), never from request order,
//! since CLIs send extra calls. It answers 401 unless the request carries the real key.

use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use super::http::{Handler, Req, Resp, Server};

/// What the scripted model should make the agent do.
#[derive(Debug, Clone)]
pub struct Script {
    /// The file the agent is told to write (relative to /workspace) and its content.
    pub file: String,
    pub content: String,
}

pub struct ModelServer {
    pub server: Server,
    pub seen: Arc<Mutex<Vec<Req>>>,
}

impl ModelServer {
    /// Accepts `x-api-key: KEY` or `Authorization: Bearer KEY` only.
    pub fn start(key: &str, script: Script) -> ModelServer {
        let seen: Arc<Mutex<Vec<Req>>> = Arc::default();
        let s2 = seen.clone();
        let key = key.to_string();
        let handler: Handler = Arc::new(move |req: Req| {
            s2.lock().unwrap().push(req.clone());
            let authed = req.header("x-api-key") == Some(key.as_str())
                || req.header("authorization") == Some(format!("Bearer {key}").as_str());
            if !authed {
                return Resp::json(
                    401,
                    json!({"type": "error", "error": {"type": "authentication_error", "message": "bad key"}}),
                );
            }
            route(&req, &script)
        });
        ModelServer {
            server: Server::start(handler),
            seen,
        }
    }

    pub fn url(&self) -> String {
        self.server.url("")
    }

    pub fn requests(&self) -> Vec<Req> {
        self.seen.lock().unwrap().clone()
    }
}

fn route(req: &Req, script: &Script) -> Resp {
    match (req.method.as_str(), req.path.as_str()) {
        ("POST", "/v1/messages") => anthropic(&req.json(), script),
        ("POST", "/v1/messages/count_tokens") => Resp::json(200, json!({"input_tokens": 10})),
        ("POST", "/v1/responses") => responses(&req.json(), script),
        ("GET", "/v1/models") => Resp::json(
            200,
            json!({"object": "list", "data": [{"id": "test-model", "object": "model"}]}),
        ),
        ("GET", "/big") => big(),
        _ => Resp::json(404, json!({"error": {"message": "no such route"}})),
    }
}

/// 10 MB of SSE, for the benchmark.
fn big() -> Resp {
    let line = format!("data: {}\n\n", "x".repeat(1000));
    Resp {
        status: 200,
        headers: vec![("Content-Type".into(), "text/event-stream".into())],
        body: line.repeat(10 * 1024 * 1024 / line.len()).into_bytes(),
    }
}

fn sse(events: &[(&str, Value)]) -> Resp {
    let mut body = String::new();
    for (name, data) in events {
        body.push_str(&format!("event: {name}\ndata: {data}\n\n"));
    }
    Resp {
        status: 200,
        headers: vec![("Content-Type".into(), "text/event-stream".into())],
        body: body.into_bytes(),
    }
}

fn text_of(v: &Value) -> String {
    v.to_string()
}

/// Names of the tools a request offers (Anthropic `tools[].name`, OpenAI `tools[].name` or
/// `tools[].function.name`, or the tool's `type` such as `apply_patch`).
fn tool_names(body: &Value) -> Vec<String> {
    body["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| {
            t["name"]
                .as_str()
                .or(t["function"]["name"].as_str())
                .or(t["type"].as_str())
                .map(String::from)
        })
        .collect()
}

/// Anthropic Messages: a `Write` tool_use when offered and no tool result came back yet; the
/// closing text otherwise.
fn anthropic(body: &Value, script: &Script) -> Resp {
    let all = text_of(&body["messages"]);
    let tools = tool_names(body);
    let done = all.contains("tool_result");
    let call = if done {
        None
    } else if tools.iter().any(|t| t == "Write") {
        Some((
            "Write",
            json!({"file_path": format!("/workspace/{}", script.file), "content": script.content}),
        ))
    } else if tools.iter().any(|t| t == "Bash") {
        Some((
            "Bash",
            json!({"command": format!("printf '%s' {} > /workspace/{}", shell_quote(&script.content), script.file), "description": "write the file"}),
        ))
    } else {
        None
    };
    let stream = body["stream"].as_bool().unwrap_or(false);
    let model = body["model"].as_str().unwrap_or("test-model").to_string();
    if !stream {
        let content = match &call {
            Some((name, input)) => {
                json!([{"type": "tool_use", "id": "toolu_01", "name": name, "input": input}])
            }
            None => json!([{"type": "text", "text": "Done."}]),
        };
        let stop = if call.is_some() {
            "tool_use"
        } else {
            "end_turn"
        };
        return Resp::json(
            200,
            json!({"id": "msg_01", "type": "message", "role": "assistant", "model": model, "content": content, "stop_reason": stop, "stop_sequence": null, "usage": {"input_tokens": 10, "output_tokens": 5}}),
        );
    }
    let start = json!({"type": "message_start", "message": {"id": "msg_01", "type": "message", "role": "assistant", "model": model, "content": [], "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 10, "output_tokens": 1}}});
    let (block, delta, stop) = match &call {
        Some((name, input)) => (
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "id": "toolu_01", "name": name, "input": {}}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": input.to_string()}}),
            "tool_use",
        ),
        None => (
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Done."}}),
            "end_turn",
        ),
    };
    sse(&[
        ("message_start", start),
        ("content_block_start", block),
        ("content_block_delta", delta),
        (
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ),
        (
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null}, "usage": {"output_tokens": 5}}),
        ),
        ("message_stop", json!({"type": "message_stop"})),
    ])
}

/// OpenAI Responses: an `apply_patch` call (custom tool or function) or a `shell` function call
/// when offered and no call output came back yet; the closing message otherwise.
fn responses(body: &Value, script: &Script) -> Resp {
    let input = text_of(&body["input"]);
    let tools = tool_names(body);
    let done = input.contains("function_call_output") || input.contains("custom_tool_call_output");
    let patch = format!(
        "*** Begin Patch\n*** Add File: {}\n{}*** End Patch\n",
        script.file,
        script
            .content
            .lines()
            .map(|l| format!("+{l}\n"))
            .collect::<String>()
    );
    let item = if done {
        json!({"type": "message", "role": "assistant", "id": "msg_1", "content": [{"type": "output_text", "text": "Done.", "annotations": []}]})
    } else if tools.iter().any(|t| t == "apply_patch") {
        let custom = body["tools"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|t| t["type"] == "custom" && t["name"] == "apply_patch");
        if custom {
            json!({"type": "custom_tool_call", "id": "ctc_1", "call_id": "call_1", "name": "apply_patch", "input": patch})
        } else {
            json!({"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "apply_patch", "arguments": json!({"input": patch}).to_string()})
        }
    } else if tools
        .iter()
        .any(|t| t == "shell" || t == "exec_command" || t == "local_shell")
    {
        let cmd = format!(
            "printf '%s' {} > {}",
            shell_quote(&script.content),
            script.file
        );
        let name = if tools.iter().any(|t| t == "shell") {
            "shell"
        } else {
            "exec_command"
        };
        let args = if name == "shell" {
            json!({"command": ["bash", "-lc", cmd]})
        } else {
            json!({"cmd": cmd})
        };
        json!({"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": name, "arguments": args.to_string()})
    } else {
        json!({"type": "message", "role": "assistant", "id": "msg_1", "content": [{"type": "output_text", "text": "Done.", "annotations": []}]})
    };
    sse(&[
        (
            "response.created",
            json!({"type": "response.created", "response": {"id": "resp_1"}}),
        ),
        (
            "response.output_item.done",
            json!({"type": "response.output_item.done", "output_index": 0, "item": item}),
        ),
        (
            "response.completed",
            json!({"type": "response.completed", "response": {"id": "resp_1", "usage": {"input_tokens": 10, "input_tokens_details": null, "output_tokens": 5, "output_tokens_details": null, "total_tokens": 15}}}),
        ),
    ])
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}
