"""ZeRO stage 1: every rank keeps AdamW's moments for its own shard of the parameters only.

The gradients must already be averaged (DataParallel). Each rank steps the parameters it owns, then each
parameter is broadcast from its owner, so all copies stay identical while the optimizer state per rank is
about 1/world_size of the whole.
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def assign_owners(params: list[torch.Tensor], world_size: int) -> list[int]:
    """The rank that owns each parameter: greedily the rank with the fewest elements so far (balanced shards)."""
    loads = [0] * world_size
    owners = []
    for p in params:
        rank = min(range(world_size), key=lambda r: loads[r])
        owners.append(rank)
        loads[rank] += p.numel()
    return owners


class ShardedAdamW(torch.optim.Optimizer):
    """AdamW over parameter groups like torch.optim.AdamW, but the state is sharded over the ranks.

    Set the learning rate in `param_groups` as usual; `step` passes it on to this rank's AdamW.
    """

    def __init__(self, params, group=None, **adamw_kwargs):
        defaults = torch.optim.AdamW([torch.zeros(1, requires_grad=True)], **adamw_kwargs).defaults
        super().__init__(params, defaults)
        self.group = group
        self.rank, self.world_size = dist.get_rank(group), dist.get_world_size(group)
        self.all_params = [p for g in self.param_groups for p in g["params"]]
        owners = assign_owners(self.all_params, self.world_size)
        self.owner = {id(p): r for p, r in zip(self.all_params, owners)}
        self._local_groups = []  # (index in param_groups, this rank's group) for groups with a parameter here
        for index, g in enumerate(self.param_groups):
            mine = [p for p in g["params"] if self.owner[id(p)] == self.rank]
            if mine:
                self._local_groups.append((index, {**{k: v for k, v in g.items() if k != "params"}, "params": mine}))
        local = [g for _, g in self._local_groups] or [{"params": [torch.zeros(1, requires_grad=True)]}]
        self.local = torch.optim.AdamW(local, **adamw_kwargs)

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for (index, _), local_group in zip(self._local_groups, self.local.param_groups):
            for key, value in self.param_groups[index].items():
                if key != "params":
                    local_group[key] = value  # e.g. the learning rate of a schedule
        if self._local_groups:
            self.local.step()
        for p in self.all_params:  # the owner's updated values to every rank
            dist.broadcast(p.data, src=self._global_rank(self.owner[id(p)]), group=self.group)
        return loss

    def _global_rank(self, group_rank: int) -> int:
        return group_rank if self.group is None else dist.get_global_rank(self.group, group_rank)

    def state_bytes(self) -> int:
        """Bytes of optimizer state held on this rank (AdamW's moments and step counters)."""
        return sum(t.numel() * t.element_size() for s in self.local.state.values() for t in s.values()
                   if isinstance(t, torch.Tensor))
