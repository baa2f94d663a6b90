-- wrk script for the peer benchmark (benchmarks/peers/load.py runs it):
--   wrk -t C -c C -s check.lua URL -- REVIEWS PATH TEMPLATE
-- POSTs the reviews of REVIEWS (one a line: the in-process model's label, a tab, the review as a
-- JSON string) to PATH, each body TEMPLATE with the review in place of %s, in turn from a
-- different place in each thread. Each thread has one connection (-t = -c), so its answers come
-- in the order of its requests and each is checked against the label expected for it: an answer
-- that is not a 200 with that label counts as wrong. done() prints one JSON line.

local threads = {}

function setup(thread)
  thread:set("thread_id", #threads)
  table.insert(threads, thread)
end

function init(args)
  path = args[2]
  bodies, labels = {}, {}
  for line in io.lines(args[1]) do
    local label, text = line:match("^(%a+)\t(.*)$")
    labels[#labels + 1] = label
    bodies[#bodies + 1] = args[3]:gsub("%%s", function() return text end)
  end
  position = (thread_id * 97) % #bodies -- threads start apart, so they send different reviews
  expected, first, last = {}, 1, 0 -- labels of the requests on the wire, oldest first
  wrong, checked = 0, 0
  -- wrk calls request() once in its first thread before any connection opens, to count the
  -- requests a script pipelines (script_verify_request in wrk's main); that one is never sent
  counting = thread_id == 0
  headers = { ["Content-Type"] = "application/json" }
end

function request()
  if counting then
    counting = false
    return wrk.format("POST", path, headers, bodies[1])
  end
  position = position % #bodies + 1
  last = last + 1
  expected[last] = labels[position]
  return wrk.format("POST", path, headers, bodies[position])
end

function response(status, _, body)
  local want = expected[first]
  expected[first] = nil
  first = first + 1
  checked = checked + 1
  if status ~= 200 or body:match('"label"%s*:%s*"(%a+)"') ~= want then
    wrong = wrong + 1
  end
end

function done(summary, latency, _)
  local wrong_total, checked_total = 0, 0
  for _, thread in ipairs(threads) do
    wrong_total = wrong_total + thread:get("wrong")
    checked_total = checked_total + thread:get("checked")
  end
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "checked": %d, "wrong": %d, "connect": %d, "read": %d, '
      .. '"write": %d, "status": %d, "timeout": %d, "p50_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, checked_total, wrong_total, e.connect, e.read, e.write,
    e.status, e.timeout, latency:percentile(50), latency:percentile(99), latency.max))
end
