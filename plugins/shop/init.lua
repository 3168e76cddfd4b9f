-- The shop plugin: catalogue tables and an order placement that is all or nothing.

plugin.define_table({ name = "shop_categories", fields = {
    {name = "category_id", type = "integer", primary_key = true},
    {name = "name", type = "text", not_null = true},
}, unique = {{"name"}} })

plugin.define_table({ name = "shop_products", fields = {
    {name = "product_id", type = "integer", primary_key = true},
    {name = "name", type = "text", not_null = true},
    {name = "price", type = "real", not_null = true},
    {name = "stock_count", type = "integer", not_null = true, default = 0},
    {name = "category_id", type = "integer", foreign_key = "shop_categories"},
}, indexes = {{"price"}} })

plugin.define_table({ name = "shop_product_attributes", fields = {
    {name = "attribute_id", type = "integer", primary_key = true},
    {name = "product_id", type = "integer", not_null = true, foreign_key = "shop_products"},
    {name = "key", type = "text", not_null = true},
    {name = "value", type = "text"},
}, unique = {{"product_id", "key"}} })

plugin.define_table({ name = "shop_orders", fields = {
    {name = "order_id", type = "integer", primary_key = true},
    {name = "customer", type = "text", not_null = true},
    {name = "total", type = "real", not_null = true, default = 0},
    {name = "created_at", type = "text"},
}})

plugin.define_table({ name = "shop_order_items", fields = {
    {name = "item_id", type = "integer", primary_key = true},
    {name = "order_id", type = "integer", not_null = true, foreign_key = "shop_orders"},
    {name = "product_id", type = "integer", not_null = true, foreign_key = "shop_products"},
    {name = "quantity", type = "integer", not_null = true},
    {name = "unit_price", type = "real", not_null = true},
}})

-- Places an order: the order row first, then one item per line with the order's generated id.
-- A bad line (unknown product, quantity below 1, not enough stock) rolls the whole order back.
local function place_order(input)
    if type(input.customer) ~= "string" or input.customer == "" then
        error("an order needs a customer")
    end
    if type(input.items) ~= "table" or #input.items == 0 then
        error("an order needs at least one item")
    end
    return transaction(function(tx)
        local order = tx:insert("shop_orders", {customer = input.customer, total = 0, created_at = os.date("!%Y-%m-%dT%H:%M:%SZ")})
        local total = 0
        for i, line in ipairs(input.items) do
            local quantity = math.tointeger(line.quantity)
            if quantity == nil or quantity < 1 then
                error(string.format("items[%d]: quantity must be a whole number of at least 1", i - 1))
            end
            local product = tx:query_one("SELECT product_id, price, stock_count FROM shop_products WHERE product_id = ?", {line.productId})
            if product == nil then
                error(string.format("items[%d]: product %s does not exist", i - 1, tostring(line.productId)))
            end
            if product.stock_count < quantity then
                error(string.format("items[%d]: only %d of product %d in stock", i - 1, product.stock_count, product.product_id))
            end
            tx:exec("UPDATE shop_products SET stock_count = stock_count - ? WHERE product_id = ?", {quantity, product.product_id})
            tx:insert("shop_order_items", {order_id = order.order_id, product_id = product.product_id,
                                           quantity = quantity, unit_price = product.price})
            total = total + quantity * product.price
        end
        tx:exec("UPDATE shop_orders SET total = ? WHERE order_id = ?", {total, order.order_id})
        return tx:query_one("SELECT * FROM shop_orders WHERE order_id = ?", {order.order_id})
    end)
end

plugin.input{ name = "OrderItemInput", fields = { productId = "Int!", quantity = "Int!" } }
plugin.input{ name = "PlaceOrderInput", fields = { customer = "String!", items = "[OrderItemInput!]!" } }

plugin.mutation{
    name = "placeOrder",
    description = "Create an order with its items in one transaction; a bad item rolls everything back.",
    args = { input = "PlaceOrderInput!" },
    returns = "ShopOrder!",
    handler = function(args, ctx) return place_order(args.input) end,
}

plugin.query{
    name = "featuredProducts",
    description = "The cheapest products in stock.",
    args = { limit = "Int" },
    returns = "[ShopProduct!]!",
    handler = function(args, ctx)
        return query("SELECT * FROM shop_products WHERE stock_count > 0 ORDER BY price, product_id LIMIT ?", {args.limit or 10})
    end,
}

plugin.field{
    type = "ShopProduct", name = "displayPrice", returns = "String!",
    handler = function(row, args, ctx) return string.format("%.2f EUR", row.price) end,
}

plugin.on("before_insert", "shop_products", function(row, ctx)
    if row.price ~= nil and row.price < 0 then error("price cannot be negative") end
    return row
end)
