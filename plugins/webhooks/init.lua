-- The webhooks plugin: subscriptions in a table; an event is queued in the outbox for each
-- matching URL (http.enqueue) and posted by the outbox worker once the change commits, retried
-- with backoff while a receiver is down (admins see each one with `deliveries`). Only hosts
-- listed in plugin.json can be reached. Content changes are delivered as "content.created" /
-- "content.updated" / "content.deleted" (after_commit: never for a change a rollback took back);
-- any event can also be sent with the deliverWebhook mutation.

plugin.define_table({ name = "webhooks_subscriptions", fields = {
    {name = "subscription_id", type = "integer", primary_key = true},
    {name = "event", type = "text", not_null = true},
    {name = "url", type = "text", not_null = true},
}})

plugin.define_table({ name = "webhooks_deliveries", fields = {
    {name = "delivery_id", type = "integer", primary_key = true},
    {name = "subscription_id", type = "integer", not_null = true, foreign_key = "webhooks_subscriptions"},
    {name = "status", type = "integer"},
    {name = "outbox_id", type = "integer"},
    {name = "error", type = "text"},
}})

-- One webhooks_deliveries row per subscription: the outbox entry it was queued as, or why not.
local function queue(event, payload)
    return transaction(function(tx)
        local queued = 0
        for _, sub in ipairs(tx:query("SELECT subscription_id, url FROM webhooks_subscriptions WHERE event = ?", {event})) do
            local ok, entry = pcall(http.enqueue, {
                method = "POST", url = sub.url, timeout = 5,
                headers = {["content-type"] = "application/json"},
                body = json.encode({event = event, data = payload}),
            })
            if ok then
                tx:insert("webhooks_deliveries", {subscription_id = sub.subscription_id, outbox_id = entry})
                queued = queued + 1
            else
                log.warn("webhook to " .. sub.url .. " refused: " .. tostring(entry))
                tx:insert("webhooks_deliveries", {subscription_id = sub.subscription_id, error = tostring(entry)})
            end
        end
        return queued
    end)
end

plugin.mutation{
    name = "deliverWebhook",
    description = "Queue an event for every subscription of that event; returns how many were queued.",
    args = { event = "String!", payload = "JSON" },
    returns = "Int!",
    handler = function(args, ctx) return queue(args.event, args.payload) end,
}

local CONTENT_EVENTS = {insert = "content.created", update = "content.updated", delete = "content.deleted"}
plugin.on("after_commit", "content", function(row, ctx) queue(CONTENT_EVENTS[ctx.change], row) end)

plugin.on("after_insert", "webhooks_subscriptions", function(row, ctx)
    log.info("new webhook subscription for " .. row.event)
end)
