-- One row per user and listing they bid on: the implicit feedback ALS learns from.
-- Incremental (Iceberg MERGE on the grain): a day's build recomputes, from all of their bids, only the (user,
-- listing) pairs with a bid the mart has not counted (an id above the highest it counted through, or after the
-- as-of it counted through: the table properties its post-hook records (macros/interactions_counted.sql); a late
-- bid of an earlier day comes with a new id), on a listing the mart holds no pair of, or on a listing whose
-- category changed, and merges them; pairs whose listing is gone are deleted after the merge. The marts stage
-- checks that the lake's copy of the staged bids changed only by appended bids since the snapshot of it the last
-- build read, and asks for `--full-refresh`, which rebuilds every pair, when it did not (the extract replaces the
-- copy when a counted bid was corrected or removed). Recomputing a pair from all of its bids makes a merge repeated
-- over the same bids (a crash before the properties were recorded) give the same rows.
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
    post_hook=["{% if is_incremental() %}{{ interactions_delete_vanished() }}{% endif %}",
               "{{ record_counted_bids() }}"],
) }}

with bids as (
    select * from {{ ref('stg_raw__bids') }}
    where bid_at <= {{ as_of() }}
),

listings as (
    select listing_id, category, sub_category from {{ ref('stg_raw__listings') }}
),

{% if is_incremental() %}
{% set counted = interactions_counted(this) %}
changed as (
    select uid, listing_id from bids
    where bid_id > {{ counted.through_bid_id }} or bid_at > timestamp '{{ counted.as_of }}'
    union
    -- bids on a listing the mart holds no pair of (one staging rejected until now)
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
{% endif %}

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
