-- The webhooks plugin: subscriptions in a table; `deliver` posts an event to each matching URL
-- and records the outcome. Only hosts listed in plugin.json can be reached. Content changes
-- (after they are committed) are delivered as "content.created" / "content.updated" /
-- "content.deleted"; any event can also be sent with the deliverWebhook mutation.

plugin.define_table({ name = "webhooks_subscriptions", fields = {
    {name = "subscription_id", type = "integer", primary_key = true},
    {name = "event", type = "text", not_null = true},
    {name = "url", type = "text", not_null = true},
}})

plugin.define_table({ name = "webhooks_deliveries", fields = {
    {name = "delivery_id", type = "integer", primary_key = true},
    {name = "subscription_id", type = "integer", not_null = true, foreign_key = "webhooks_subscriptions"},
    {name = "status", type = "integer"},
    {name = "error", type = "text"},
}})

local function deliver(event, payload)
    local sent = 0
    for _, sub in ipairs(query("SELECT subscription_id, url FROM webhooks_subscriptions WHERE event = ?", {event})) do
        local ok, response = pcall(http.request, {
            method = "POST", url = sub.url, timeout = 5,
            headers = {["content-type"] = "application/json"},
            body = json.encode({event = event, data = payload}),
        })
        if ok then
            insert("webhooks_deliveries", {subscription_id = sub.subscription_id, status = response.status})
            sent = sent + 1
        else
            log.warn("webhook to " .. sub.url .. " failed: " .. tostring(response))
            insert("webhooks_deliveries", {subscription_id = sub.subscription_id, error = tostring(response)})
        end
    end
    return sent
end

plugin.mutation{
    name = "deliverWebhook",
    description = "Post an event to every subscription of that event; returns how many succeeded.",
    args = { event = "String!", payload = "JSON" },
    returns = "Int!",
    handler = function(args, ctx) return deliver(args.event, args.payload) end,
}

plugin.on("after_insert", "content", function(row, ctx) deliver("content.created", row) end)
plugin.on("after_update", "content", function(row, ctx) deliver("content.updated", row) end)
plugin.on("after_delete", "content", function(row, ctx) deliver("content.deleted", row) end)

plugin.on("after_insert", "webhooks_subscriptions", function(row, ctx)
    log.info("new webhook subscription for " .. row.event)
end)
