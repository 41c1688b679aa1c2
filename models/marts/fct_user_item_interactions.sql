-- One row per user and listing they bid on: the implicit feedback ALS learns from.
-- Incremental (Iceberg MERGE on the grain): a day's build recomputes, from all of their bids, only the (user,
-- listing) pairs that may have changed (a bid inside the lookback window, where late bids of earlier days land, a
-- listing the mart holds no pair of, or a listing whose category changed) and merges those whose row differs from
-- the mart's; pairs whose bids or listing are gone (a regenerated marketplace) are deleted after the merge. Bids
-- before the window are trusted to be the ones counted: the marts stage checks their fingerprint
-- (python_jobs/runs/settled_bids.py) and asks for `--full-refresh`, which rebuilds every pair, when they changed.
-- Merge-on-read: a merge writes the changed pairs and marks the rows they replace as deleted, instead of
-- rewriting every data file that holds one of them (copy-on-write rewrote nearly the whole table each day, as a
-- day's changed pairs are spread over all of it); `encore-recs maintain` compacts the deletes away.
{{ config(
    materialized='incremental',
    incremental_strategy='merge',
    unique_key=['uid', 'listing_id'],
    on_schema_change='fail',
    tblproperties=merge_on_read(),
    pre_hook=["{% if is_incremental() %}alter table {{ this }} set tblproperties ("
              ~ merge_on_read_sql() ~ "){% endif %}"],
    post_hook=["{% if is_incremental() %}{{ interactions_delete_vanished() }}{% endif %}"],
) }}

with bids as (
    select * from {{ ref('stg_raw__bids') }}
    where bid_at <= {{ as_of() }}
),

listings as (
    select listing_id, category, sub_category from {{ ref('stg_raw__listings') }}
),

{% if is_incremental() %}
changed as (
    select uid, listing_id from bids
    where bid_at > (select coalesce(max(last_bid_at), timestamp '1970-01-01') from {{ this }})
        - interval {{ var('interactions_lookback_days') | int }} days
    union
    -- bids on a listing the mart holds no pair of (one staging rejected until now); any other pair the mart lacks
    -- has a bid inside the window, or one before it that changes the settled bids' fingerprint (a full refresh)
    select bids.uid, bids.listing_id from bids left semi join (
        select listing_id from listings
        left anti join (select distinct listing_id from {{ this }}) as built on listings.listing_id = built.listing_id
    ) as unseen on bids.listing_id = unseen.listing_id
    union
    select built.uid, built.listing_id
    from {{ this }} as built
    inner join listings on built.listing_id = listings.listing_id
    where not (built.category <=> listings.category and built.sub_category <=> listings.sub_category)
),

rebuilt as (
    select bids.* from bids left semi join changed
        on bids.uid = changed.uid and bids.listing_id = changed.listing_id
)
{% else %}
rebuilt as (
    select * from bids
)
{% endif %},

aggregated as (
    select
        rebuilt.uid,
        rebuilt.listing_id,
        listings.category,
        listings.sub_category,
        count(*) as bid_count,
        -- amounts are in cents: rounded, the sum is the same in any order (an incremental build adds in another order)
        cast(round(sum(rebuilt.bid_amount), 2) as double) as total_bid_amount,
        cast(max(rebuilt.bid_amount) as double) as max_bid_amount,
        min(rebuilt.bid_at) as first_bid_at,
        max(rebuilt.bid_at) as last_bid_at
    from rebuilt
    inner join listings on rebuilt.listing_id = listings.listing_id
    group by rebuilt.uid, rebuilt.listing_id, listings.category, listings.sub_category
)

select aggregated.* from aggregated
{% if is_incremental() %}
-- only the pairs that differ from what the mart holds: the window's pairs are mostly as they were, and a merge
-- writes (and marks deleted) every row it is given
left anti join {{ this }} as built
    on aggregated.uid = built.uid and aggregated.listing_id = built.listing_id
    and aggregated.category <=> built.category and aggregated.sub_category <=> built.sub_category
    and aggregated.bid_count = built.bid_count and aggregated.total_bid_amount = built.total_bid_amount
    and aggregated.max_bid_amount = built.max_bid_amount and aggregated.first_bid_at = built.first_bid_at
    and aggregated.last_bid_at = built.last_bid_at
{% endif %}
