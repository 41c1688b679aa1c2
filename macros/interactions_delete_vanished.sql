{#- The post-hook of the incremental fct_user_item_interactions: the pairs none of whose bids (up to the run's as-of,
    on a listing that still exists) is left, which a MERGE of the changed pairs cannot remove. -#}
{% macro interactions_delete_vanished() -%}
    delete from {{ this }} as built
    where not exists (
        select 1 from {{ ref('stg_raw__bids') }} as bids
        inner join {{ ref('stg_raw__listings') }} as listings on bids.listing_id = listings.listing_id
        where bids.uid = built.uid and bids.listing_id = built.listing_id and bids.bid_at <= {{ as_of() }}
    )
{%- endmacro %}
