{#- The post-hook of the incremental fct_user_item_interactions: the pairs on a listing that is gone, which a MERGE
    of the changed pairs cannot remove. (A pair whose counted bids were removed is found by the
    check of the staged bids' history: python_jobs/runs/settled_bids.py, then a full refresh.) -#}
{% macro interactions_delete_vanished() -%}
    delete from {{ this }} as built
    where not exists (
        select 1 from {{ ref('stg_raw__listings') }} as listings where listings.listing_id = built.listing_id
    )
{%- endmacro %}
