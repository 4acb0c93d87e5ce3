-- wrk script for bench/run.sh: counts responses by HTTP status and prints
-- one line at the end, e.g. `statuses: 200=2020 429=897876`.
-- A `response` callback slows wrk down, so run.sh uses this only where the
-- status mix matters more than the request rate.

local threads = {}

function setup(thread)
    table.insert(threads, thread)
end

function init(args)
    statuses = {} -- global: done() reads it through thread:get
end

function response(status, headers, body)
    statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
    local total = {}
    for _, thread in ipairs(threads) do
        for status, n in pairs(thread:get("statuses") or {}) do
            total[status] = (total[status] or 0) + n
        end
    end
    local codes = {}
    for status in pairs(total) do
        table.insert(codes, status)
    end
    table.sort(codes)
    local parts = {}
    for _, status in ipairs(codes) do
        table.insert(parts, status .. "=" .. total[status])
    end
    io.write("statuses: " .. table.concat(parts, " ") .. "\n")
end
