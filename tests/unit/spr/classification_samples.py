"""A labelled set of real-looking samples, 8 per content type (`tasks.spr.models.CONTENT_TYPES`),
64 in all."""

SAMPLES: list[tuple[str, str]] = [
    # ---------------------------------------------------------------- code
    (
        "code",
        """def load_config(path: str) -> dict:
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    if "version" not in data:
        raise ValueError(f"{path}: missing version")
    return data
""",
    ),
    (
        "code",
        """import React, { useState } from "react";

export function Counter({ start = 0 }) {
  const [count, setCount] = useState(start);
  return <button onClick={() => setCount(count + 1)}>{count}</button>;
}
""",
    ),
    (
        "code",
        """#include <stdio.h>

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        printf("%d: %s\\n", i, argv[i]);
    }
    return 0;
}
""",
    ),
    (
        "code",
        """class LRUCache:
    def __init__(self, capacity):
        self.capacity = capacity
        self.items = OrderedDict()

    def get(self, key):
        if key not in self.items:
            return None
        self.items.move_to_end(key)
        return self.items[key]
""",
    ),
    (
        "code",
        """func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if err := s.db.Ping(); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	json.NewEncoder(w).Encode(map[string]string{"status": "ok"})
}
""",
    ),
    (
        "code",
        """SELECT c.name, COUNT(o.id) AS orders, SUM(o.total) AS revenue
FROM customers c
JOIN orders o ON o.customer_id = c.id
WHERE o.created_at >= '2024-01-01'
GROUP BY c.name
ORDER BY revenue DESC;
""",
    ),
    (
        "code",
        """fn parse_port(raw: &str) -> Result<u16, String> {
    let port: u16 = raw.parse().map_err(|e| format!("bad port {raw}: {e}"))?;
    if port < 1024 {
        return Err(format!("port {port} is reserved"));
    }
    Ok(port)
}
""",
    ),
    (
        "code",
        """@pytest.fixture
def client(tmp_path):
    app = create_app({"DATABASE": tmp_path / "test.db"})
    with app.test_client() as client:
        yield client

def test_index_redirects(client):
    response = client.get("/")
    assert response.status_code == 302
""",
    ),
    # ---------------------------------------------------------------- technical
    (
        "technical",
        """Each API request first hits the load balancer, which routes it to one of three
stateless backend services. The services read from a Redis cache before querying the
PostgreSQL primary; cache misses add about 40 ms of latency. Under peak load the cluster
scales from 6 to 20 nodes, and throughput stays above 12,000 requests per second.""",
    ),
    (
        "technical",
        """The kernel schedules threads across all CPU cores, but our worker pool pins
each consumer to a single queue. When a queue backs up, the consumers on other queues sit idle,
so memory grows while CPU usage stays under 30 percent. Rebalancing the queues across
consumers removed the backlog.""",
    ),
    (
        "technical",
        """Replication lag between the primary database and the read replicas spiked
to 9 seconds during the nightly batch job. The job issues large UPDATE statements that
generate heavy WAL traffic, and the replicas apply it on a single thread. Splitting the
updates into batches of 5,000 rows keeps the lag below one second.""",
    ),
    (
        "technical",
        """Our Kubernetes deployment runs each microservice in its own container with
CPU and memory limits. Liveness probes restart a container after three failed health checks,
and readiness probes remove it from the service endpoints until it recovers. Rolling updates
replace one replica at a time.""",
    ),
    (
        "technical",
        """DNS resolution inside the cluster goes through CoreDNS, which caches
records for 30 seconds. A misconfigured ndots setting made every lookup try five search
domains first, multiplying DNS queries and adding latency to each outbound HTTP request from
the backend nodes.""",
    ),
    (
        "technical",
        """The storage layer writes each object to three disks on different nodes
before acknowledging the request. Reads go to the nearest replica. When a node fails, the
background repair process copies its shards to healthy nodes, limited to 200 MB/s of network
bandwidth so client traffic is not starved.""",
    ),
    (
        "technical",
        """TLS termination happens at the edge proxy; traffic between the proxy and the
backend services uses mutual TLS with certificates rotated every 24 hours. Connection pooling
on the proxy keeps about 400 open TCP connections to each backend, which cut handshake
overhead and p99 latency by half.""",
    ),
    (
        "technical",
        """The message queue guarantees at-least-once delivery, so consumers must be
idempotent. Each message carries a deduplication key; the consumer records processed keys in
the database inside the same transaction as its side effects. Messages that fail five times
move to a dead-letter queue for inspection.""",
    ),
    # ---------------------------------------------------------------- documentation
    (
        "documentation",
        """# Installation

Install the package with pip:

    pip install reactor-flows

## Usage

Run `reactor --help` to see the available commands. See the configuration section for the
options you can set in `reactor.toml`.""",
    ),
    (
        "documentation",
        """## Parameters

- **path** (str): the file to read. Required.
- **encoding** (str, optional): defaults to `utf-8`.
- **strict** (bool, optional): raise on invalid lines. Default: `False`.

## Returns

A list of records. Raises `ValueError` when the file is empty.""",
    ),
    (
        "documentation",
        """Getting started
===============

This guide walks you through creating your first project. Make sure you have Python 3.11 or
newer installed. Then run the init command, which creates a configuration file with sensible
defaults. The next section explains each option in the file.""",
    ),
    (
        "documentation",
        """### Options

`--output DIR`   Write results to DIR instead of the current directory.
`--verbose`      Print every file as it is processed.
`--dry-run`      Show what would be done without changing anything.

Note: options given on the command line override the configuration file.""",
    ),
    (
        "documentation",
        """.. function:: retry(fn, tries=3, delay=1.0)

   Call *fn* until it succeeds or *tries* attempts have failed. The delay between attempts
   doubles each time. Returns the value of the first successful call.

   .. versionadded:: 2.1
   .. deprecated:: 3.0 Use :func:`with_backoff` instead.""",
    ),
    (
        "documentation",
        """## Configuration reference

Every setting can also be given as an environment variable with the `APP_` prefix.

| Setting | Default | Description |
|---|---|---|
| `port` | 8080 | Port the server listens on |
| `log_level` | `info` | One of debug, info, warning |

See the deployment guide for production defaults.""",
    ),
    (
        "documentation",
        """# Contributing

Thanks for your interest! Before opening a pull request, please run the test suite with
`make test` and the linters with `make lint`. New features need documentation: add a section
to the user guide and an example to the examples directory. See the code of conduct for
community guidelines.""",
    ),
    (
        "documentation",
        """## Example

The following example reads a CSV file and prints the first five rows:

```python
import tablekit
table = tablekit.read("data.csv")
print(table.head(5))
```

Note that `read` infers column types by default; pass `infer=False` to keep strings.""",
    ),
    # ---------------------------------------------------------------- scientific
    (
        "scientific",
        """Abstract. We tested the hypothesis that sleep deprivation impairs working
memory in adolescents. Participants (n = 64) completed a digit-span task after normal sleep and
after 24 hours without sleep. Mean accuracy fell from 82% to 67% (p < 0.01), a statistically
significant effect that persisted after controlling for age.""",
    ),
    (
        "scientific",
        """Samples were incubated at 37 °C for 48 hours and the protein concentration
was measured by absorbance at 280 nm. Each measurement was repeated three times; the
coefficient of variation was below 5%. Control samples without the enzyme showed no
significant change.""",
    ),
    (
        "scientific",
        """Our results indicate a strong correlation (r = 0.78) between soil moisture
and seedling survival across the 12 study plots. However, the experimental design cannot
separate moisture from shade, since the wettest plots were also the most shaded. Further
trials with controlled irrigation are needed.""",
    ),
    (
        "scientific",
        """The regression model explains 61% of the variance in reaction time. Age and
prior training both had significant effects, whereas the interaction term did not reach
significance. These findings are consistent with earlier studies by Smith et al. (2019), but
the effect sizes observed here are smaller.""",
    ),
    (
        "scientific",
        """We observed the species at four sites over two breeding seasons.
Population estimates from mark-recapture analysis ranged from 120 to 340 individuals per site.
The evidence suggests that temperature, not food availability, limits breeding success at the
northern sites.""",
    ),
    (
        "scientific",
        """Methodology. Cells were cultured in standard medium and exposed to the
compound at five concentrations. Viability was measured after 24, 48 and 72 hours. The mean
viability at the highest concentration was 34% ± 6% of control, indicating a dose-dependent
effect.""",
    ),
    (
        "scientific",
        """In a randomized controlled trial of 410 patients, the treatment group showed
a 23% reduction in symptom scores compared with placebo. The difference was statistically
significant (95% CI 14–31%). Adverse effects were mild and occurred at similar rates in both
groups.""",
    ),
    (
        "scientific",
        """Conclusion: the measurements support the model's prediction that the
reaction rate doubles for every 10 °C increase in temperature within the tested range.
Deviations above 60 °C suggest enzyme denaturation, which the model does not account for;
future experiments should extend the range.""",
    ),
    # ---------------------------------------------------------------- business
    (
        "business",
        """Q3 revenue grew 18% year over year to $42.1M, driven by enterprise customers
in North America. Gross margin improved to 71% as hosting costs fell. We are raising our
full-year forecast and will increase marketing spend in Q4 ahead of the product launch.""",
    ),
    (
        "business",
        """The board approved the acquisition of a smaller competitor for $12M in cash.
The deal adds roughly 300 customers and two key partnerships. Integration costs are expected
to reduce EBITDA by $1.5M next fiscal year before synergies take effect.""",
    ),
    (
        "business",
        """Our strategy for next year focuses on three goals: grow revenue from existing
clients, reduce customer churn below 5%, and expand into the European market. Each team will
set quarterly OKRs aligned to these goals, and we will review KPIs monthly with stakeholders.""",
    ),
    (
        "business",
        """Sales closed 14 new contracts this quarter, but the average deal size dropped
because of discounting. Pricing needs to be revisited: the sales team should stop offering
discounts above 15% without approval from the CFO.""",
    ),
    (
        "business",
        """Headcount will grow from 85 to 110 by the end of the fiscal year. Most hiring
is in engineering and customer success. The hiring budget assumes a 6-month ramp for new
account executives before they reach full quota.""",
    ),
    (
        "business",
        """Investors asked about our path to profitability. At the current growth rate
and cost structure we reach break-even in Q2 of next year. The main risks are slower customer
acquisition and rising cloud costs; both are tracked in the monthly executive review.""",
    ),
    (
        "business",
        """Market research shows our brand awareness among small businesses is 22%,
compared with 41% for the market leader. The marketing plan shifts budget from paid search to
partnerships with accounting firms, which drove our best-converting customers last year.""",
    ),
    (
        "business",
        """Customer retention improved to 94% after the onboarding changes launched in
March. Support costs per customer fell 12%. The product team proposes a premium tier priced at
$49 per month; finance projects it adds $2M in annual revenue.""",
    ),
    # ---------------------------------------------------------------- narrative
    (
        "narrative",
        """The rain had not stopped for three days when Martha finally opened the door.
She looked out at the flooded road and thought of her father, who had walked it every morning
for forty years. Somewhere down the hill a dog was barking.""",
    ),
    (
        "narrative",
        """He remembered the house as larger than it was. The window by the stairs,
where his mother used to sit, was boarded up now, and the garden had gone wild. He stood at
the gate for a long time before he turned and walked back to the car.""",
    ),
    (
        "narrative",
        """Once upon a time, in a village at the edge of a great forest, there lived an
old woodcutter and his daughter. Every night she asked him for a story, and every night he
told her the same one, about a fox who had outwitted a king.""",
    ),
    (
        "narrative",
        """"You're late," she said, without looking up from her book. Tom hung his coat
on the hook and sat down across from her. The kettle was already warm. Neither of them spoke
about the letter that lay open on the table between them.""",
    ),
    (
        "narrative",
        """The train pulled out of the station just after midnight. Anna pressed her face
to the cold glass and watched the lights of the city shrink to nothing. She had packed in ten
minutes and had not said goodbye to anyone. Her hands were still shaking.""",
    ),
    (
        "narrative",
        """By the time the soldiers reached the river, the bridge was gone. The captain
ordered them to camp in the trees. That night nobody slept; they listened to the water and to
the guns far to the east, and they thought of home.""",
    ),
    (
        "narrative",
        """My grandfather kept bees behind the barn. Every summer he let me help him with
the hives, and every summer I was stung at least once. He would laugh, pull the stinger out
with his thumbnail and tell me that the bees only stung people they liked.""",
    ),
    (
        "narrative",
        """The old lighthouse keeper climbed the stairs each evening at dusk. For thirty
years he had lit the lamp, and for thirty years the ships had passed safely. On the night of
the storm, however, he found the door at the top locked from the inside.""",
    ),
    # ---------------------------------------------------------------- conversation
    (
        "conversation",
        """alice: hey, did the deploy go out?
bob: yeah about 10 min ago
alice: cool, can you check the error rate? i'm seeing some 500s
bob: on it
bob: looks like one pod is crashlooping, restarting it now
alice: thanks!""",
    ),
    (
        "conversation",
        """Customer: Hi, I ordered a blue jacket last week but received a green one.
Agent: I'm sorry about that! Could you send me your order number?
Customer: Sure, it's 48213.
Agent: Thanks. I've arranged a replacement, and you'll get a return label by email.
Customer: Great, thank you so much!""",
    ),
    (
        "conversation",
        """[09:14] <dana> morning all
[09:15] <raj> morning! anyone know why CI is red?
[09:15] <dana> i think it's the flaky network test again
[09:16] <raj> ugh ok, i'll rerun it
[09:20] <raj> green now, thanks""",
    ),
    (
        "conversation",
        """Interviewer: What made you want to become a nurse?
Maria: Honestly, my grandmother. She was sick for a long time and the nurses were so kind.
Interviewer: And what's the hardest part of the job?
Maria: The night shifts. You never really get used to them.""",
    ),
    (
        "conversation",
        """Sam: are we still on for lunch tomorrow?
Jo: yes! 12:30 at the usual place?
Sam: perfect. should I invite Chris too?
Jo: sure, the more the merrier lol
Sam: ok, see you then""",
    ),
    (
        "conversation",
        """User: How do I reset my password?
Assistant: You can reset it from the login page: click "Forgot password" and follow the link
we email you.
User: I didn't get any email.
Assistant: Please check your spam folder. If it's not there, I can resend it for you.""",
    ),
    (
        "conversation",
        """Tom: hey, quick question about the report
Lisa: sure, what's up?
Tom: do you want the charts in the appendix or inline?
Lisa: inline please, it's easier to read
Tom: ok will do, thanks""",
    ),
    (
        "conversation",
        """Q: Hi team, is the office open on Monday?
A: Hi! No, Monday is a public holiday, so the office is closed.
Q: Ok thanks. And Tuesday?
A: Tuesday is a normal working day. Have a nice long weekend!""",
    ),
    # ---------------------------------------------------------------- data/log
    (
        "data/log",
        """2024-05-01T12:00:01Z INFO  api  request id=8f2 path=/orders status=200 ms=41
2024-05-01T12:00:02Z WARN  api  slow query table=orders ms=1840
2024-05-01T12:00:02Z ERROR api  request id=8f3 path=/checkout status=500 ms=12
2024-05-01T12:00:03Z INFO  api  request id=8f4 path=/orders status=200 ms=38""",
    ),
    (
        "data/log",
        """date,region,product,units,revenue
2024-01-01,north,widget,120,2400.00
2024-01-01,south,widget,95,1900.00
2024-01-02,north,gadget,40,3200.00
2024-01-02,south,gadget,52,4160.00
2024-01-03,east,widget,77,1540.00""",
    ),
    (
        "data/log",
        """May  3 10:22:01 web01 sshd[2211]: Accepted publickey for deploy from 10.0.4.12
May  3 10:22:05 web01 sudo: deploy : TTY=pts/0 ; PWD=/srv ; COMMAND=/bin/systemctl restart app
May  3 10:22:06 web01 systemd[1]: Stopping app.service
May  3 10:22:07 web01 systemd[1]: Started app.service""",
    ),
    (
        "data/log",
        """| host   | cpu % | mem % | disk % | uptime |
|--------|-------|-------|--------|--------|
| web01  | 43    | 71    | 55     | 12d    |
| web02  | 38    | 69    | 57     | 12d    |
| db01   | 81    | 92    | 74     | 40d    |""",
    ),
    (
        "data/log",
        """[2024-06-12 08:01:13,442] DEBUG worker-3 fetching batch 1172
[2024-06-12 08:01:13,950] DEBUG worker-3 batch 1172 has 500 rows
[2024-06-12 08:01:14,103] ERROR worker-3 row 311: invalid timestamp '2024-13-01'
[2024-06-12 08:01:14,220] INFO worker-3 batch 1172 done (499 ok, 1 failed)""",
    ),
    (
        "data/log",
        """id\tname\temail\tsignup_date\tplan
1001\tAna Lopez\tana@example.com\t2023-11-02\tpro
1002\tBen Ito\tben@example.com\t2023-11-05\tfree
1003\tCara Diaz\tcara@example.com\t2023-11-09\tpro
1004\tDev Rao\tdev@example.com\t2023-11-12\tteam""",
    ),
    (
        "data/log",
        """12:00:01.201 [main] INFO  o.a.k.c.Consumer - Subscribed to topic(s): orders
12:00:01.877 [main] INFO  o.a.k.c.Consumer - Assigned partitions: orders-0, orders-1
12:00:05.013 [poll] WARN  o.a.k.c.Consumer - Commit failed, retrying (attempt 2)
12:00:05.514 [poll] INFO  o.a.k.c.Consumer - Offset 88213 committed""",
    ),
    (
        "data/log",
        """timestamp,sensor_id,temperature_c,humidity_pct,battery_v
2024-07-01 00:00,S-01,21.4,55,3.71
2024-07-01 00:10,S-01,21.2,56,3.71
2024-07-01 00:20,S-01,21.1,56,3.70
2024-07-01 00:00,S-02,19.8,61,3.65
2024-07-01 00:10,S-02,19.7,62,3.65""",
    ),
]
