//! The model router: tries a chain of providers in order, each behind a circuit breaker, asks
//! for JSON of the caller's schema, repairs an invalid reply once, and falls back to the next
//! provider on 429, 5xx, timeouts, network errors, invalid output and an open breaker. A 4xx
//! caused by our own request is a bug: it stops the chain (no fallback). When every provider
//! has failed the caller answers with the offline analyser; the steps taken are returned
//! either way so the result can say which model produced it and why others were skipped.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Map, Value};

use super::policy::{ModelSpec, default_spec};
use super::quota::{ModelLimiter, QuotaGuard, Reservation};
use super::structured::{JsonType, parse_reply, repair_prompt};
use super::tokens::Tokenizer;
use super::{ChatRequest, ChatResponse, Provider, ProviderError};

/// When a provider's breaker opens and how long it stays open.
#[derive(Clone, Copy, Debug)]
pub struct BreakerConfig {
    /// Consecutive failures that open the breaker.
    pub failures_to_open: u32,
    /// How long an open breaker refuses calls before one probe is let through.
    pub cooldown: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failures_to_open: 5,
            cooldown: Duration::from_secs(30),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// One probe call is in flight; others are refused until it ends.
    HalfOpen,
}

/// closed → open after N consecutive failures → half-open (one probe) after the cool-down →
/// closed on the probe's success, open again on its failure.
#[derive(Debug)]
pub struct Breaker {
    cfg: BreakerConfig,
    state: Mutex<State>,
}

impl Breaker {
    pub fn new(cfg: BreakerConfig) -> Breaker {
        Breaker {
            cfg,
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a call may go through now (an open breaker past its cool-down lets one probe).
    pub fn try_acquire(&self) -> bool {
        let mut s = self.lock();
        match *s {
            State::Closed { .. } => true,
            State::Open { until } if Instant::now() >= until => {
                *s = State::HalfOpen;
                true
            }
            State::Open { .. } | State::HalfOpen => false,
        }
    }

    pub fn on_success(&self) {
        *self.lock() = State::Closed { failures: 0 };
    }

    pub fn on_failure(&self) {
        let mut s = self.lock();
        let open = State::Open {
            until: Instant::now() + self.cfg.cooldown,
        };
        *s = match *s {
            State::Closed { failures } if failures + 1 < self.cfg.failures_to_open => {
                State::Closed { failures: failures + 1 }
            }
            _ => open,
        };
    }

    /// Ends a probe (or a turn) that made no call: an acquired half-open state goes back to open
    /// for another probe at once.
    pub fn release(&self) {
        let mut s = self.lock();
        if *s == State::HalfOpen {
            *s = State::Open { until: Instant::now() };
        }
    }

    /// Open or probing: calls are (mostly) refused.
    pub fn is_open(&self) -> bool {
        !matches!(*self.lock(), State::Closed { .. })
    }

    /// The state as reported: an open breaker past its cool-down is half-open (the next call
    /// is the probe).
    pub fn state(&self) -> BreakerState {
        match *self.lock() {
            State::Closed { .. } => BreakerState::Closed,
            State::Open { until } if Instant::now() < until => BreakerState::Open,
            State::Open { .. } | State::HalfOpen => BreakerState::HalfOpen,
        }
    }
}

/// A breaker's state as shown on /ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half-open",
        }
    }
}

/// One provider that was tried or skipped, and why.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FallbackStep {
    pub provider: String,
    pub model: String,
    pub reason: String,
}

/// One call made to a provider, for the audit table.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CallRecord {
    pub provider: String,
    pub model: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// From the model's prices in the routing policy.
    pub cost_usd: Option<f64>,
    pub latency_ms: u64,
    /// `ok` or the error's label (`server_error`, `timeout`, …).
    pub outcome: &'static str,
    /// Position of the provider in the chain.
    pub step: usize,
}

/// A valid JSON reply and where it came from.
#[derive(Clone, Debug)]
pub struct Routed {
    pub object: Map<String, Value>,
    /// The chain entry that answered.
    pub spec: ModelSpec,
    pub response: ChatResponse,
    /// Providers tried before this one, in order.
    pub fallbacks: Vec<FallbackStep>,
    /// Every call made, repairs included.
    pub calls: Vec<CallRecord>,
}

#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// Our request was refused as malformed (a bug on our side): no other model is tried.
    #[error("{provider} rejected the request: {error}")]
    Rejected {
        provider: String,
        error: ProviderError,
        fallbacks: Vec<FallbackStep>,
        calls: Vec<CallRecord>,
    },
    /// Every provider failed or was skipped: answer with the offline analyser.
    #[error("every model failed ({} tried)", fallbacks.len())]
    Exhausted {
        fallbacks: Vec<FallbackStep>,
        calls: Vec<CallRecord>,
    },
}

impl RouteError {
    /// The calls made before the chain ended.
    pub fn calls(&self) -> &[CallRecord] {
        match self {
            RouteError::Rejected { calls, .. } | RouteError::Exhausted { calls, .. } => calls,
        }
    }
}

struct Link {
    provider: Box<dyn Provider>,
    breaker: Arc<Breaker>,
    spec: ModelSpec,
    limiter: ModelLimiter,
    tokenizer: Tokenizer,
}

/// An ordered chain of providers.
pub struct Router {
    links: Vec<Link>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let chain: Vec<String> = self.links.iter().map(|l| label(l.provider.as_ref())).collect();
        f.debug_struct("Router").field("chain", &chain).finish()
    }
}

fn label(p: &dyn Provider) -> String {
    format!("{}/{}", p.kind(), p.model())
}

/// How one provider's attempt ended.
enum Attempt {
    Done(Map<String, Value>, ChatResponse),
    Failed(String),
    Rejected(ProviderError),
}

/// Builds the request for one model of the chain (so context is packed into that model's window).
pub type RequestFor<'a> = dyn Fn(&ModelSpec, &Tokenizer) -> ChatRequest + Send + Sync + 'a;

/// One routed call: the request per model, the fields the reply must have, and whose budget pays.
pub struct CallPlan<'a> {
    pub request: &'a RequestFor<'a>,
    pub required: &'a [(String, JsonType)],
    /// The tenant and its quota guard; `None` for no budget (tests, tools).
    pub quota: Option<(&'a QuotaGuard, &'a str)>,
}

impl Router {
    /// A chain with each provider's built-in figures ([`default_spec`]) and its own breaker.
    pub fn new(providers: Vec<Box<dyn Provider>>, breaker: BreakerConfig) -> Router {
        Router::with_specs(
            providers
                .into_iter()
                .map(|p| {
                    let spec = default_spec(p.kind(), p.model());
                    (p, spec, Arc::new(Breaker::new(breaker)))
                })
                .collect(),
        )
    }

    /// A chain of providers with their specs and breakers (share a breaker between chains that
    /// use the same provider).
    pub fn with_specs(links: Vec<(Box<dyn Provider>, ModelSpec, Arc<Breaker>)>) -> Router {
        Router {
            links: links
                .into_iter()
                .map(|(provider, spec, breaker)| Link {
                    tokenizer: Tokenizer::for_provider(provider.kind()),
                    limiter: ModelLimiter::new(&spec),
                    provider,
                    breaker,
                    spec,
                })
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
    }

    /// The models of the chain, in order.
    pub fn specs(&self) -> Vec<&ModelSpec> {
        self.links.iter().map(|l| &l.spec).collect()
    }

    /// Each provider's breaker state, for /ready and the `autodevops_breaker_open` gauge.
    pub fn breakers(&self) -> Vec<(String, bool)> {
        self.links
            .iter()
            .map(|l| (label(l.provider.as_ref()), l.breaker.is_open()))
            .collect()
    }

    /// Asks the chain for a JSON object with the `required` top-level fields, the same request
    /// for every model, no budget.
    pub async fn complete_json(
        &self,
        req: &ChatRequest,
        required: &[(String, JsonType)],
    ) -> Result<Routed, RouteError> {
        let same = |_: &ModelSpec, _: &Tokenizer| req.clone();
        self.complete(&CallPlan {
            request: &same,
            required,
            quota: None,
        })
        .await
    }

    /// Routes one call: for each model in order, skip it when its breaker is open, its request
    /// would not fit its window, a rate limit is reached or the tenant's budget cannot pay for it;
    /// otherwise call it (one repair on invalid JSON), settling the budget to the real usage.
    pub async fn complete(&self, plan: &CallPlan<'_>) -> Result<Routed, RouteError> {
        let mut fallbacks = Vec::new();
        let mut calls = Vec::new();
        for (step_no, link) in self.links.iter().enumerate() {
            let provider = link.provider.as_ref();
            let step = |reason: String| FallbackStep {
                provider: provider.kind().to_string(),
                model: provider.model().to_owned(),
                reason,
            };
            let req = (plan.request)(&link.spec, &link.tokenizer);
            let input = link.tokenizer.count_request(&req);
            let need = input + u64::from(req.max_output_tokens);
            if need > link.spec.context_window {
                fallbacks.push(step(format!(
                    "request over the context window ({input} input + {} output tokens > {})",
                    req.max_output_tokens, link.spec.context_window
                )));
                continue;
            }
            if let Err(reason) = link.limiter.check(need) {
                fallbacks.push(step(reason));
                continue;
            }
            if !link.breaker.try_acquire() {
                fallbacks.push(step("circuit breaker open".to_owned()));
                continue;
            }
            let mut record = |r: CallRecord| calls.push(CallRecord { step: step_no, ..r });
            let budget = Budgeted {
                link,
                quota: plan.quota,
                estimate: input,
            };
            match attempt(provider, &req, plan.required, &budget, &mut record).await {
                Attempt::Done(object, response) => {
                    link.breaker.on_success();
                    set_breaker_gauge(link);
                    return Ok(Routed {
                        object,
                        spec: link.spec.clone(),
                        response,
                        fallbacks,
                        calls,
                    });
                }
                Attempt::Failed(reason) => {
                    // Refused before any call (budget, rate limit): not the provider's fault.
                    if calls.last().is_some_and(|c| c.step == step_no) {
                        link.breaker.on_failure();
                    } else {
                        link.breaker.release();
                    }
                    set_breaker_gauge(link);
                    tracing::warn!(provider = %label(provider), %reason, "model failed; falling back");
                    fallbacks.push(step(reason));
                }
                Attempt::Rejected(error) => {
                    // Not the provider's fault: the breaker is left alone.
                    link.breaker.on_success();
                    tracing::error!(provider = %label(provider), %error, "model rejected our request (a bug)");
                    return Err(RouteError::Rejected {
                        provider: label(provider),
                        error,
                        fallbacks,
                        calls,
                    });
                }
            }
        }
        Err(RouteError::Exhausted { fallbacks, calls })
    }
}

fn set_breaker_gauge(link: &Link) {
    metrics::gauge!("autodevops_breaker_open", "provider" => link.provider.kind().as_str())
        .set(if link.breaker.is_open() { 1.0 } else { 0.0 });
}

/// A link with the budget that pays for its calls.
struct Budgeted<'a> {
    link: &'a Link,
    quota: Option<(&'a QuotaGuard, &'a str)>,
    /// Estimated input tokens of the first request.
    estimate: u64,
}

impl Budgeted<'_> {
    /// Reserves input + maximum output (and their cost) before a call; `Err` is the fallback reason.
    async fn reserve(&self, input: u64, output: u32) -> Result<Option<Reservation>, String> {
        let Some((guard, tenant)) = self.quota else {
            return Ok(None);
        };
        let spec = &self.link.spec;
        let tokens = input + u64::from(output);
        guard.rate(spec, tokens).await.map_err(|e| e.to_string())?;
        let cost = spec.cost_usd(input, u64::from(output));
        guard
            .reserve(tenant, tokens, cost)
            .await
            .map(Some)
            .map_err(|e| e.to_string())
    }

    async fn settle(&self, reservation: Option<Reservation>, record: &CallRecord) {
        if let (Some((guard, tenant)), Some(r)) = (self.quota, reservation) {
            let tokens = record.input_tokens + record.output_tokens;
            if let Err(e) = guard.settle(r, tokens, record.cost_usd.unwrap_or(0.0)).await {
                tracing::warn!(tenant, error = %e, "could not settle a model call's budget; the reservation stands");
            }
        }
    }
}

/// One provider: the call, then one repair call if the reply is not the JSON asked for.
async fn attempt(
    provider: &dyn Provider,
    req: &ChatRequest,
    required: &[(String, JsonType)],
    budget: &Budgeted<'_>,
    record: &mut (dyn FnMut(CallRecord) + Send),
) -> Attempt {
    let first = match call(provider, req, budget, budget.estimate, record).await {
        Ok(r) => r,
        Err(Failure::Refused(reason)) => return Attempt::Failed(reason),
        Err(Failure::Provider(e)) if e.is_fallback_worthy() => return Attempt::Failed(e.to_string()),
        Err(Failure::Provider(e)) => return Attempt::Rejected(e),
    };
    let problem = match parse_reply(&first.text, required) {
        Ok(object) => return Attempt::Done(object, first),
        Err(problem) => problem.to_string(),
    };
    let repair = ChatRequest {
        user: repair_prompt(&req.user, &first.text, &problem),
        ..req.clone()
    };
    let estimate = budget.link.tokenizer.count_request(&repair);
    match call(provider, &repair, budget, estimate, record).await {
        Ok(second) => match parse_reply(&second.text, required) {
            Ok(object) => Attempt::Done(object, second),
            Err(again) => Attempt::Failed(format!("invalid output after one repair: {again}")),
        },
        Err(Failure::Refused(reason)) => Attempt::Failed(format!("repair not sent: {reason}")),
        Err(Failure::Provider(e)) if e.is_fallback_worthy() => Attempt::Failed(e.to_string()),
        Err(Failure::Provider(e)) => Attempt::Rejected(e),
    }
}

enum Failure {
    /// Not sent: budget or rate limit.
    Refused(String),
    Provider(ProviderError),
}

/// A provider call with its budget reservation, settlement and metrics.
async fn call(
    provider: &dyn Provider,
    req: &ChatRequest,
    budget: &Budgeted<'_>,
    estimate: u64,
    record: &mut (dyn FnMut(CallRecord) + Send),
) -> Result<ChatResponse, Failure> {
    let reservation = budget
        .reserve(estimate, req.max_output_tokens)
        .await
        .map_err(Failure::Refused)?;
    let started = Instant::now();
    let res = provider.chat(req).await;
    let (kind, model) = (provider.kind().as_str(), provider.model().to_owned());
    let (input_tokens, output_tokens) = res.as_ref().map_or((0, 0), |r| (r.input_tokens, r.output_tokens));
    let cost = budget.link.spec.cost_usd(input_tokens, output_tokens);
    let rec = CallRecord {
        provider: kind.to_owned(),
        model: model.clone(),
        input_tokens,
        output_tokens,
        cost_usd: Some(cost),
        latency_ms: started.elapsed().as_millis() as u64,
        outcome: res.as_ref().map_or_else(ProviderError::label, |_| "ok"),
        step: 0,
    };
    budget.settle(reservation, &rec).await;
    record(rec);
    let outcome = match &res {
        Ok(r) => {
            metrics::counter!("autodevops_model_tokens_total", "provider" => kind, "direction" => "input")
                .increment(r.input_tokens);
            metrics::counter!("autodevops_model_tokens_total", "provider" => kind, "direction" => "output")
                .increment(r.output_tokens);
            // metrics' counters are integers: the cost is a gauge that only grows.
            metrics::gauge!("autodevops_model_cost_usd_total", "provider" => kind, "model" => model.clone())
                .increment(cost);
            "ok"
        }
        Err(e) => e.label(),
    };
    metrics::counter!("autodevops_model_calls_total", "provider" => kind, "model" => model, "outcome" => outcome)
        .increment(1);
    metrics::histogram!("autodevops_model_call_duration_seconds", "provider" => kind)
        .record(started.elapsed().as_secs_f64());
    res.map_err(Failure::Provider)
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;
    use crate::models::test_support::{config, request};
    use crate::models::{ProviderKind, build};

    /// An OpenAI chat.completion whose message content is `content`.
    fn completion(content: &str) -> ResponseTemplate {
        ResponseTemplate::new(200).set_body_json(json!({
            "id": "chatcmpl-123", "object": "chat.completion", "created": 1_700_000_000, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
        }))
    }

    fn required() -> Vec<(String, JsonType)> {
        vec![("summary".to_owned(), JsonType::String)]
    }

    async fn provider(server: &MockServer, model: &str, timeout: Duration) -> Box<dyn Provider> {
        let mut cfg = config(
            ProviderKind::OpenAiCompatible,
            &server.uri(),
            Some("sk-test-key-123456"),
            model,
        );
        cfg.timeout = timeout;
        build(&cfg, reqwest::Client::new())
    }

    async fn chain(servers: &[&MockServer], breaker: BreakerConfig) -> Router {
        let mut providers = Vec::new();
        for (i, s) in servers.iter().enumerate() {
            providers.push(provider(s, &format!("model-{i}"), Duration::from_millis(500)).await);
        }
        Router::new(providers, breaker)
    }

    async fn respond(server: &MockServer, response: ResponseTemplate) {
        Mock::given(method("POST"))
            .and(path("/chat/completions"))
            .respond_with(response)
            .mount(server)
            .await;
    }

    #[tokio::test]
    async fn falls_back_on_500_429_and_timeout_and_says_so() {
        let failing = [
            ResponseTemplate::new(500).set_body_json(json!({"error": {"message": "boom"}})),
            ResponseTemplate::new(429).insert_header("retry-after", "3"),
            completion("{\"summary\": \"late\"}").set_delay(Duration::from_secs(3)),
        ];
        for (failure, expected) in failing.into_iter().zip(["500", "rate limit", "timed out"]) {
            let (bad, good) = (MockServer::start().await, MockServer::start().await);
            respond(&bad, failure).await;
            respond(&good, completion("{\"summary\": \"fine\"}")).await;
            let routed = chain(&[&bad, &good], BreakerConfig::default())
                .await
                .complete_json(&request(true), &required())
                .await
                .unwrap();
            assert_eq!(routed.object["summary"], "fine");
            assert_eq!(routed.response.model, "m");
            assert_eq!(routed.fallbacks.len(), 1);
            assert_eq!(routed.fallbacks[0].model, "model-0");
            let reason = routed.fallbacks[0].reason.to_lowercase();
            assert!(reason.contains(expected), "{expected}: {reason}");
        }
    }

    #[tokio::test]
    async fn invalid_json_is_repaired_once_then_falls_back() {
        // Repaired: the second answer of the same provider is valid.
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(completion("Sure! Here is my analysis: summary=ok"))
            .up_to_n_times(1)
            .mount(&server)
            .await;
        respond(&server, completion("```json\n{\"summary\": \"repaired\"}\n```")).await;
        let routed = chain(&[&server], BreakerConfig::default())
            .await
            .complete_json(&request(true), &required())
            .await
            .unwrap();
        assert_eq!(routed.object["summary"], "repaired");
        assert!(routed.fallbacks.is_empty());
        let requests = server.received_requests().await.unwrap();
        assert_eq!(requests.len(), 2);
        let repair: Value = serde_json::from_slice(&requests[1].body).unwrap();
        assert!(
            repair.to_string().contains("summary=ok"),
            "the repair quotes the bad reply"
        );

        // Still invalid after the repair: the next provider answers.
        let (bad, good) = (MockServer::start().await, MockServer::start().await);
        respond(&bad, completion("{\"summary\": 42}")).await;
        respond(&good, completion("{\"summary\": \"from next\"}")).await;
        let routed = chain(&[&bad, &good], BreakerConfig::default())
            .await
            .complete_json(&request(true), &required())
            .await
            .unwrap();
        assert_eq!(routed.object["summary"], "from next");
        assert!(
            routed.fallbacks[0].reason.contains("after one repair"),
            "{:?}",
            routed.fallbacks
        );
        assert_eq!(bad.received_requests().await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_request_error_stops_the_chain_and_exhaustion_is_reported() {
        let (bad, next) = (MockServer::start().await, MockServer::start().await);
        respond(
            &bad,
            ResponseTemplate::new(400).set_body_json(json!({"error": {"message": "bad field"}})),
        )
        .await;
        respond(&next, completion("{\"summary\": \"x\"}")).await;
        let err = chain(&[&bad, &next], BreakerConfig::default())
            .await
            .complete_json(&request(true), &required())
            .await
            .unwrap_err();
        assert!(matches!(err, RouteError::Rejected { .. }), "{err:?}");
        assert!(
            next.received_requests().await.unwrap().is_empty(),
            "no fallback on our own 4xx"
        );

        let (a, b) = (MockServer::start().await, MockServer::start().await);
        respond(&a, ResponseTemplate::new(503)).await;
        respond(&b, ResponseTemplate::new(500)).await;
        let err = chain(&[&a, &b], BreakerConfig::default())
            .await
            .complete_json(&request(true), &required())
            .await
            .unwrap_err();
        assert_eq!(err.calls().len(), 2, "one audited call per provider");
        let RouteError::Exhausted { fallbacks, .. } = err else {
            panic!("{err:?}")
        };
        assert_eq!(
            fallbacks.iter().map(|f| f.model.as_str()).collect::<Vec<_>>(),
            ["model-0", "model-1"]
        );
    }

    #[tokio::test]
    async fn breaker_opens_after_n_failures_and_half_opens_after_the_cooldown() {
        let (flaky, backup) = (MockServer::start().await, MockServer::start().await);
        respond(&flaky, ResponseTemplate::new(500)).await;
        respond(&backup, completion("{\"summary\": \"backup\"}")).await;
        let cfg = BreakerConfig {
            failures_to_open: 3,
            cooldown: Duration::from_millis(300),
        };
        let router = chain(&[&flaky, &backup], cfg).await;
        for _ in 0..3 {
            router.complete_json(&request(true), &required()).await.unwrap();
        }
        assert_eq!(flaky.received_requests().await.unwrap().len(), 3);
        assert!(router.breakers()[0].1, "open after 3 consecutive failures");
        // Open: the flaky provider is skipped without a call.
        let routed = router.complete_json(&request(true), &required()).await.unwrap();
        assert_eq!(routed.fallbacks[0].reason, "circuit breaker open");
        assert_eq!(flaky.received_requests().await.unwrap().len(), 3);

        // After the cool-down one probe goes through; it succeeds, so the breaker closes.
        tokio::time::sleep(Duration::from_millis(350)).await;
        flaky.reset().await;
        respond(&flaky, completion("{\"summary\": \"recovered\"}")).await;
        let routed = router.complete_json(&request(true), &required()).await.unwrap();
        assert_eq!(routed.object["summary"], "recovered");
        assert!(routed.fallbacks.is_empty());
        assert!(!router.breakers()[0].1, "closed after a successful probe");
    }

    #[test]
    fn a_failed_probe_reopens_and_only_one_probe_at_a_time() {
        let b = Breaker::new(BreakerConfig {
            failures_to_open: 1,
            cooldown: Duration::ZERO,
        });
        b.on_failure();
        assert!(b.is_open());
        assert!(b.try_acquire(), "cool-down over: one probe");
        assert!(!b.try_acquire(), "a second caller waits while the probe runs");
        b.on_failure();
        assert!(b.is_open());
        assert!(b.try_acquire());
        b.on_success();
        assert!(!b.is_open());
    }

    #[test]
    fn state_reports_closed_open_and_half_open() {
        let b = Breaker::new(BreakerConfig {
            failures_to_open: 2,
            cooldown: Duration::from_millis(100),
        });
        b.on_failure();
        assert_eq!(b.state(), BreakerState::Closed, "one failure of two");
        b.on_failure();
        assert_eq!(b.state(), BreakerState::Open);
        std::thread::sleep(Duration::from_millis(120));
        assert_eq!(
            b.state(),
            BreakerState::HalfOpen,
            "cool-down over: the next call probes"
        );
        assert!(b.try_acquire());
        assert_eq!(b.state(), BreakerState::HalfOpen, "probe in flight");
        b.on_success();
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(serde_json::to_value(BreakerState::HalfOpen).unwrap(), "half-open");
    }

    #[tokio::test]
    async fn calls_are_priced_and_a_spent_budget_or_a_small_window_makes_no_call() {
        use crate::models::quota::{Budget, Budgets, QuotaGuard};
        let server = MockServer::start().await;
        respond(&server, completion("{\"summary\": \"ok\"}")).await;
        let link = |window: u64| {
            let mut spec = default_spec(ProviderKind::OpenAiCompatible, "model-0");
            spec.input_usd_per_mtok = 2.0;
            spec.output_usd_per_mtok = 8.0;
            spec.context_window = window;
            spec.max_output_tokens = 512;
            let cfg = config(
                ProviderKind::OpenAiCompatible,
                &server.uri(),
                Some("sk-test-key-123456"),
                "model-0",
            );
            let breaker = Arc::new(Breaker::new(BreakerConfig::default()));
            (build(&cfg, reqwest::Client::new()), spec, breaker)
        };
        let guard = |tokens: u64| {
            let budgets = Budgets {
                default: Budget {
                    tokens: Some(tokens),
                    cost_usd: None,
                },
                ..Budgets::default()
            };
            QuotaGuard::local(budgets, &crate::models::Policy::built_in(&[]))
        };
        let req = request(true);
        let same = |_: &ModelSpec, _: &Tokenizer| req.clone();
        let plan = |q| CallPlan {
            request: &same,
            required: &[],
            quota: q,
        };

        let roomy = guard(100_000);
        let routed = Router::with_specs(vec![link(32_000)])
            .complete(&plan(Some((&roomy, "acme"))))
            .await
            .unwrap();
        // usage 10 in, 5 out at $2 / $8 per million
        assert_eq!(routed.calls[0].cost_usd, Some((10.0 * 2.0 + 5.0 * 8.0) / 1e6));
        assert_eq!(
            roomy.used("acme").await.unwrap().0,
            15,
            "the reservation is settled to the real usage"
        );

        let tight = guard(300);
        let err = Router::with_specs(vec![link(32_000)])
            .complete(&plan(Some((&tight, "acme"))))
            .await
            .unwrap_err();
        let RouteError::Exhausted { fallbacks, calls } = err else {
            panic!("{err:?}")
        };
        assert!(calls.is_empty());
        assert!(fallbacks[0].reason.contains("budget exhausted"), "{fallbacks:?}");
        assert_eq!(tight.used("acme").await.unwrap().0, 0);

        let err = Router::with_specs(vec![link(520)])
            .complete(&plan(None))
            .await
            .unwrap_err();
        let RouteError::Exhausted { fallbacks, .. } = err else {
            panic!("{err:?}")
        };
        assert!(fallbacks[0].reason.contains("over the context window"), "{fallbacks:?}");
        assert_eq!(
            server.received_requests().await.unwrap().len(),
            1,
            "only the first call was sent"
        );
    }
}
